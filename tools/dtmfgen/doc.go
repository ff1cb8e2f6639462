// Command dtmfgen builds the DTMF accuracy corpus in testdata/dtmf and
// scores detectors against it.
//
//	dtmfgen gen [-out testdata/dtmf] [-speech]
//	dtmfgen score [-manifest testdata/dtmf/manifest.tsv] RESULTS.tsv
//
// gen writes deterministic µ-law WAV files (8 kHz mono) and manifest.tsv
// (file, category, expected digits, description). Every synthetic file is
// the same on every run (fixed seeds). With -speech it also synthesises
// the talk-off speech with espeak-ng and converts it with sox (Debian
// packages espeak-ng, sox); without it the committed speech files are kept.
//
// score reads RESULTS.tsv, lines "file<TAB>detector<TAB>digits", and prints
// a Markdown table: per detector, digits expected, detected (true), missed
// and false, per category and per file. Digits are matched in order
// (longest common subsequence), so a wrong digit counts once as missed and
// once as false.
package main
