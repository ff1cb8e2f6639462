// Command wavlevel prints the levels of 8 kHz mono WAV files (16-bit PCM,
// G.711 µ-law or A-law) as cloak's own meter reads them (audio.ActiveLevel,
// audio.DBm0; conventions in docs/AUDIO.md):
//
//	wavlevel FILE...          one line per file: active level (dBm0),
//	                          activity, RMS (dBm0 and dBFS), peak (dBFS)
//	wavlevel -active FILE     only the active level in dBm0, for scripts
//
// scripts/gen-prompts.sh uses -active to bring each prompt to its level.
package main
