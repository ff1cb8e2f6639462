// Package config is cloak's one YAML configuration: every field has a
// working default, so `cloak serve` alone runs the demo, and Validate refuses
// a bad file naming the field's path and the reason. A file that does not
// even decode is refused the same way (Parse): an unknown field with the
// nearest known name, a value of the wrong kind, a field given twice, each
// with its path and line:column; a YAML syntax error with its line:column.
package config
