package store_test

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/migrations"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestMigrationV1ToV2 writes a store at schema v1, opens it with code that
// has a v2 step, and checks the step ran once, the version moved and the
// data survived. A store marked newer than the binary is refused.
func TestMigrationV1ToV2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	v1 := migrations.All()[:1]

	s := openStore(t, dir, func(c *store.Config) { c.Migrations = v1 })
	kms := fixtures(t)
	_, err := s.Append(ctx, store.Batch{Killmails: kms[:5]})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	have, _, err := store.SchemaVersion(dir)
	require.NoError(t, err)
	assert.Equal(t, 1, have)

	runs := 0
	v2 := append(append([]migrations.Step{}, v1...), migrations.Step{
		Name: "v2: test step that marks the keyspace",
		Apply: func(_ context.Context, db *pebble.DB) error {
			runs++
			return db.Set([]byte("c/migrated-by-v2"), []byte("yes"), pebble.Sync)
		},
	})
	s2 := openStore(t, dir, func(c *store.Config) { c.Migrations = v2 })
	v, err := s2.GetKV(ctx, "migrated-by-v2")
	require.NoError(t, err)
	assert.Equal(t, "yes", string(v))
	assert.EqualValues(t, 5, s2.Count(), "data survives the migration")
	require.NoError(t, s2.Close())
	have, _, err = store.SchemaVersion(dir)
	require.NoError(t, err)
	assert.Equal(t, 2, have)

	// Opening again does not re-run the step.
	s3 := openStore(t, dir, func(c *store.Config) { c.Migrations = v2 })
	require.NoError(t, s3.Close())
	assert.Equal(t, 1, runs)

	// The v1 binary refuses the v2 store with a clear error.
	_, err = store.Open(ctx, store.Config{Dir: dir, Migrations: v1})
	require.ErrorIs(t, err, store.ErrSchemaTooNew)
	assert.Contains(t, err.Error(), "schema v2")
	assert.Contains(t, err.Error(), "up to v1")
}
