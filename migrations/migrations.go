// Package migrations holds the ordered, append-only list of schema steps
// over the store's Pebble keyspace. The store's schema version is the
// number of steps applied; store.Open applies the missing ones in order.
//
// A step that has shipped is never edited or removed: a change of layout is
// a new step appended at the end. Steps must tolerate being re-run, since a
// crash between a step and the version bump re-applies it on the next open.
//
// This package speaks Pebble and nothing else of the project.
package migrations

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Step is one schema change. Apply runs against the open database before
// the store serves anything; it owns any batches it makes and must commit
// them with pebble.Sync.
type Step struct {
	// Name says what the step does, for logs and `migrate` output.
	Name  string
	Apply func(ctx context.Context, db *pebble.DB) error
}

// CreatedKey records when the keyspace was laid out (schema v1).
var createdKey = []byte("m/created")

// All returns the steps of this binary, oldest first. Version N means
// All()[:N] have been applied.
func All() []Step {
	return []Step{
		{Name: "v1: killmail keyspace (log l/, docs i/, ids k/, times t/, kv c/, meta m/)", Apply: v1},
		{Name: "v2: log records may be MinLZ-compressed (record version 2)", Apply: v2},
	}
}

// v1 marks a new keyspace with its creation time. The layout itself needs
// no rewrite: an empty database is a valid v1 store.
func v1(_ context.Context, db *pebble.DB) error {
	_, closer, err := db.Get(createdKey)
	if err == nil {
		return closer.Close()
	}
	if err != pebble.ErrNotFound {
		return fmt.Errorf("migrations: v1: %w", err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if err := db.Set(createdKey, []byte(now), pebble.Sync); err != nil {
		return fmt.Errorf("migrations: v1: %w", err)
	}
	return nil
}

// v2 lets new log records be MinLZ-compressed. Records of version 1 stay
// as they are and remain readable; the step exists so that a binary that
// cannot read compressed records refuses the store instead of failing on
// its first read.
func v2(context.Context, *pebble.DB) error { return nil }
