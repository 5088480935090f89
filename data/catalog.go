// Package data owns the static EVE names that ship with the binary: ship
// types and solar systems from the SDE, embedded as CSV files and parsed
// by Load. It imports nothing of this module.
package data

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
)

//go:embed ship_types.csv
var shipTypesCSV []byte

//go:embed solar_systems.csv
var solarSystemsCSV []byte

// Ship is one ship type (SDE category 6).
type Ship struct {
	TypeID    int64
	GroupID   int64
	Name      string
	GroupName string
}

// System is one solar system. Security is the true security status
// (unrounded); SecurityClass is empty for systems that have none
// (abyssal, void).
type System struct {
	ID              int64
	Name            string
	RegionID        int64
	RegionName      string
	ConstellationID int64
	Security        float64
	SecurityClass   string
}

// Catalog is the parsed static data. It is read-only after Load and safe
// for concurrent use.
type Catalog struct {
	ships   map[int64]Ship
	systems map[int64]System
}

// ErrMalformed is returned by Load when an embedded file does not parse;
// it means the binary was built with a broken data file.
var ErrMalformed = errors.New("data: malformed embedded file")

// Load parses the embedded files. It takes a few milliseconds; call it
// once at start-up and share the result.
func Load() (*Catalog, error) {
	ships, err := parseShips(shipTypesCSV)
	if err != nil {
		return nil, err
	}
	systems, err := parseSystems(solarSystemsCSV)
	if err != nil {
		return nil, err
	}
	return &Catalog{ships: ships, systems: systems}, nil
}

// Ship returns the ship type with the given type id.
func (c *Catalog) Ship(typeID int64) (Ship, bool) {
	s, ok := c.ships[typeID]
	return s, ok
}

// System returns the solar system with the given id.
func (c *Catalog) System(id int64) (System, bool) {
	s, ok := c.systems[id]
	return s, ok
}

// ShipCount returns how many ship types the catalog holds.
func (c *Catalog) ShipCount() int { return len(c.ships) }

// SystemCount returns how many solar systems the catalog holds.
func (c *Catalog) SystemCount() int { return len(c.systems) }

var (
	shipHeader   = []string{"typeID", "groupID", "typeName", "groupName", "categoryID", "groupPublished"}
	systemHeader = []string{"solarSystemID", "solarSystemName", "regionID", "regionName", "constellationID", "security", "securityClass"}
)

func parseShips(b []byte) (map[int64]Ship, error) {
	out := make(map[int64]Ship, 600)
	err := readCSV("ship_types.csv", b, shipHeader, func(r []string) error {
		var s Ship
		var err error
		if s.TypeID, err = parseID(r[0]); err != nil {
			return err
		}
		if s.GroupID, err = parseID(r[1]); err != nil {
			return err
		}
		s.Name, s.GroupName = r[2], r[3]
		out[s.TypeID] = s
		return nil
	})
	return out, err
}

func parseSystems(b []byte) (map[int64]System, error) {
	out := make(map[int64]System, 8500)
	err := readCSV("solar_systems.csv", b, systemHeader, func(r []string) error {
		s := System{Name: r[1], RegionName: r[3], SecurityClass: r[6]}
		var err error
		if s.ID, err = parseID(r[0]); err != nil {
			return err
		}
		if s.RegionID, err = parseID(r[2]); err != nil {
			return err
		}
		if s.ConstellationID, err = parseID(r[4]); err != nil {
			return err
		}
		if s.Security, err = strconv.ParseFloat(r[5], 64); err != nil {
			return err
		}
		out[s.ID] = s
		return nil
	})
	return out, err
}

// readCSV checks the header and calls row for every record.
func readCSV(name string, b []byte, header []string, row func([]string) error) error {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = len(header)
	r.ReuseRecord = true
	got, err := r.Read()
	if err != nil {
		return fmt.Errorf("%w: %s: header: %w", ErrMalformed, name, err)
	}
	for i, h := range header {
		if got[i] != h {
			return fmt.Errorf("%w: %s: column %d is %q, want %q", ErrMalformed, name, i+1, got[i], h)
		}
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
		}
		if err := row(rec); err != nil {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("%w: %s line %d: %w", ErrMalformed, name, line, err)
		}
	}
}

func parseID(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err == nil && v <= 0 {
		err = fmt.Errorf("id %d is not positive", v)
	}
	return v, err
}
