//go:build !race

package server

// raceEnabled scales the heaviest live tests down under the race detector.
const raceEnabled = false
