// Package config is cloak's one YAML configuration: every field has a
// working default, so `cloak serve` alone runs the demo, and Validate refuses
// a bad file naming the field's path and the reason.
package config
