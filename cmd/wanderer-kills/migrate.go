package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/migrations"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

func runMigrate(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fset := newFlagSet("migrate", "Show the store's schema version and apply the missing migrations.", env, stderr)
	var sf storeFlags
	sf.register(fset)
	var dryRun bool
	fset.boolean(&dryRun, "dry-run", "", false, "only show the versions, change nothing")
	if err := fset.parse(args); err != nil {
		return err
	}
	if err := sf.validate(); err != nil {
		return err
	}
	log, err := sf.logger(stderr)
	if err != nil {
		return err
	}
	steps := migrations.All()
	have := 0
	if entries, err := os.ReadDir(sf.dataDir); err == nil && len(entries) > 0 {
		if have, _, err = store.SchemaVersion(sf.dataDir); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fmt.Fprintf(stdout, "store %s: schema v%d; this binary: v%d\n", sf.dataDir, have, len(steps))
	for i, s := range steps {
		state := "pending"
		if i < have {
			state = "applied"
		}
		fmt.Fprintf(stdout, "  v%d %-8s %s\n", i+1, state, s.Name)
	}
	if dryRun || have == len(steps) {
		return nil
	}
	if have > len(steps) {
		return fmt.Errorf("%w: the store has schema v%d, this binary knows up to v%d", store.ErrSchemaTooNew, have, len(steps))
	}
	start := time.Now()
	st, err := store.Open(ctx, store.Config{Dir: sf.dataDir, Logger: log})
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrated to v%d in %s\n", len(steps), time.Since(start).Round(time.Millisecond))
	return nil
}
