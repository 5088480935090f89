// Package store is the system of record: killmails persisted in an embedded
// Pebble LSM, a write log of dense offsets in ingest order, lookups by
// killmail id and by kill time, persisted key-value cursors, retention, and
// the roaring-bitmap index kept consistent with the data.
//
// Every accepted write goes through one group-commit writer, which applies
// each group to Pebble and moves on to the next while the WAL syncs; only
// once a group's sync is done does it count as accepted, reach the index
// and become visible to tail readers (Head, Changed, Read).
// A kill -9 therefore loses no accepted write and leaves no half-written
// killmail.
//
// Keyspace (one byte prefix, then big-endian integers so keys sort):
//
//	m/<name>              metadata: schema version, epoch, head, trimmed
//	l<offset>             log record: version, flags, canonical killmail JSON
//	i<offset>             index.Doc of that record (rebuilds the index on open)
//	k<killmail id>        offset of that killmail
//	t<kill time><id>      offset, for time-ordered scans and retention
//	c/<key>               the key-value API (cursors, names, progress)
//
// store imports index and migrations and nothing else of the project.
package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/migrations"
)

// Errors returned by the store. Match them with errors.Is.
var (
	ErrNotFound     = errors.New("store: not found")
	ErrClosed       = errors.New("store: closed")
	ErrSchemaTooNew = errors.New("store: schema is newer than this binary")
	ErrCorrupt      = errors.New("store: corrupt record")
	// ErrLocked means another process (or another Open in this one) holds
	// the directory: one store, one owner.
	ErrLocked = errors.New("store: held by another process")
)

// Config configures a Store. The zero value of every field is a working
// default except Dir.
type Config struct {
	// Dir is the Pebble directory. Required.
	Dir string
	// Retention deletes killmails whose kill time is older than this.
	// Zero keeps everything.
	Retention time.Duration
	// RetentionInterval is how often Run applies retention. Zero means 15m.
	RetentionInterval time.Duration
	// CacheBytes is Pebble's block cache. Zero means 64 MiB.
	CacheBytes int64
	// RecentBytes is the memory that holds the newest records, so that
	// the live tail, resumes and queries over recent days skip the LSM.
	// It is filled in the background after Open. Zero means 128 MiB;
	// negative, none.
	RecentBytes int
	// MaxBatch caps the killmails of one group commit. Zero means 1000.
	MaxBatch int
	// Migrations are the schema steps; nil means migrations.All().
	Migrations []migrations.Step
	// FS replaces the filesystem (tests use Pebble's in-memory VFS).
	// Nil means the OS.
	FS vfs.FS
	// Now is the clock used by validation and retention. Nil means time.Now.
	Now func() time.Time
	// Logger receives store logs. Nil discards them.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = 15 * time.Minute
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 64 << 20
	}
	if c.RecentBytes == 0 {
		c.RecentBytes = 128 << 20
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Migrations == nil {
		c.Migrations = migrations.All()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is an open killmail store. All methods are safe for concurrent
// use. Close it when done; Run (optional) drives retention.
type Store struct {
	cfg   Config
	db    *pebble.DB
	ix    *index.Index
	log   *slog.Logger
	epoch string

	ops  chan *op
	stop chan struct{}
	done chan struct{}
	// indexed carries applied groups from the writer to the indexer,
	// which waits for their WAL sync, indexes them, advances head and
	// releases their callers, while the writer already applies the next
	// groups. inflight counts the groups handed over and not yet indexed
	// (writer-side Add and Wait).
	indexed  chan *committed
	inflight sync.WaitGroup
	// broken is the commit failure after which the store takes no more
	// writes: a group the writer applied did not become durable.
	broken atomic.Pointer[error]

	// recent holds the newest records; warming fills it after Open and
	// is stopped by Close.
	recent   *recent
	stopWarm context.CancelFunc
	warmed   chan struct{}

	// known holds the id of every stored killmail (ids fit 32 bits for
	// decades; larger ones are looked up in Pebble), so the dedup check of
	// a new id reads nothing. Owned by the writer goroutine after Open.
	known *roaring.Bitmap

	// head is the highest accepted (durable) offset; 0 when empty.
	head atomic.Uint64
	// next is the offset the writer hands out next. Writer-owned.
	next uint64
	// pending is the writer's map of the ids a group has written so far
	// (see commitAppends), reused from group to group.
	pending map[int64]*Result
	trimmed atomic.Uint64

	changedMu sync.Mutex
	changed   chan struct{}

	closeOnce sync.Once
	closed    atomic.Bool
}

// Open opens (or creates) the store in cfg.Dir, applies missing
// migrations, refuses a store written by a newer binary, and rebuilds the
// index. ctx bounds the migrations and the index rebuild.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store: Config.Dir is required")
	}
	cfg.defaults()
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	db, err := pebble.Open(cfg.Dir, pebbleOptions(cfg, cache))
	if lockHeld(err) {
		return nil, fmt.Errorf("%w: %s: %w", ErrLocked, cfg.Dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	s := &Store{
		cfg:     cfg,
		db:      db,
		log:     cfg.Logger.With("component", "store"),
		ops:     make(chan *op, 256),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		indexed: make(chan *committed, indexDepth),
		changed: make(chan struct{}),
		pending: make(map[int64]*Result),
	}
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.recent = newRecent(cfg.RecentBytes, s.next)
	warmCtx, cancel := context.WithCancel(context.Background())
	s.stopWarm, s.warmed = cancel, make(chan struct{})
	go func() {
		defer close(s.warmed)
		if err := s.recent.warm(warmCtx, s.db); err != nil && warmCtx.Err() == nil {
			s.log.Warn("loading recent records into memory failed; they are read from disk", "err", err)
		}
	}()
	go s.writer()
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	applied, err := migrate(ctx, s.db, s.cfg.Migrations, s.log)
	if err != nil {
		return err
	}
	if applied > 0 && s.cfg.FS == nil {
		// A migration may have changed what the index is built from.
		_ = os.Remove(s.snapshotPath())
	}
	epoch, err := s.metaString(keyEpoch)
	if errors.Is(err, ErrNotFound) {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("store: epoch: %w", err)
		}
		epoch = hex.EncodeToString(b[:])
		if err := s.db.Set(keyEpoch, []byte(epoch), pebble.Sync); err != nil {
			return fmt.Errorf("store: write epoch: %w", err)
		}
	} else if err != nil {
		return err
	}
	s.epoch = epoch
	head, err := s.metaUint(keyHead)
	if err != nil {
		return err
	}
	trimmed, err := s.metaUint(keyTrimmed)
	if err != nil {
		return err
	}
	s.head.Store(head)
	s.next = head + 1
	s.trimmed.Store(trimmed)
	start := time.Now()
	from := "snapshot"
	ix, known, err := s.loadSnapshot(head)
	if errors.Is(err, errNoSnapshot) {
		from = "log"
		ix, known, err = s.loadIndex(ctx)
	}
	if err != nil {
		return err
	}
	s.ix, s.known = ix, known
	s.log.Info("store open", "dir", s.cfg.Dir, "epoch", epoch, "head", head,
		"killmails", ix.Len(), "index_from", from, "index_ms", time.Since(start).Milliseconds())
	return nil
}

// lockHeld reports whether Pebble failed on its LOCK file: another process
// holds it (fcntl answers EAGAIN or EACCES, not a path error), or this one
// does.
func lockHeld(err error) bool {
	if err == nil {
		return false
	}
	var errno syscall.Errno
	var pathErr *fs.PathError
	if errors.As(err, &errno) && !errors.As(err, &pathErr) && (errno == syscall.EAGAIN || errno == syscall.EACCES) {
		return true
	}
	return strings.Contains(err.Error(), "lock held by current process")
}

// pebbleOptions tunes Pebble for this workload: killmail records of a
// few KB written once in offset order, beside small index keys. Value
// separation keeps the records in blob files that compactions do not
// rewrite, which cuts write amplification; bloom filters make the dedup lookup
// of a new id cheap; a bigger memtable
// makes fewer, larger flushes.
func pebbleOptions(cfg Config, cache *pebble.Cache) *pebble.Options {
	opts := &pebble.Options{
		Cache:                       cache,
		FS:                          cfg.FS,
		Logger:                      pebbleLogger{cfg.Logger.With("component", "pebble")},
		FormatMajorVersion:          pebble.FormatValueSeparation,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
	}
	// MinLZ (Pebble's "fastest" profile on amd64) compresses keys and docs
	// about as well as Snappy for less CPU. Records arrive compressed
	// (compressRecord): value blocks, which hold them, are stored as they are.
	profile := *block.FastestCompression
	profile.Name = "wanderer-kills-records"
	profile.ValueBlocks = block.NoCompression.ValueBlocks
	for i := range opts.Levels {
		opts.Levels[i].Compression = func() *block.CompressionProfile { return &profile }
	}
	// Bloom filters let the dedup lookup of a new id skip every table.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	opts.Experimental.EnableColumnarBlocks = func() bool { return true }
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           256,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     10 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	return opts
}

// migrate applies the steps after the stored schema version, bumping the
// version after each, and refuses a version this binary does not know.
func migrate(ctx context.Context, db *pebble.DB, steps []migrations.Step, log *slog.Logger) (applied int, err error) {
	have, err := readUint(db, keySchema)
	if err != nil {
		return 0, err
	}
	if have > uint64(len(steps)) {
		return 0, fmt.Errorf("%w: the store has schema v%d, this binary knows up to v%d; use a newer wanderer-kills",
			ErrSchemaTooNew, have, len(steps))
	}
	for v := have; v < uint64(len(steps)); v++ {
		if err := ctx.Err(); err != nil {
			return applied, err
		}
		step := steps[v]
		log.Info("applying migration", "version", v+1, "name", step.Name)
		if err := step.Apply(ctx, db); err != nil {
			return applied, fmt.Errorf("store: migration v%d (%s): %w", v+1, step.Name, err)
		}
		if err := db.Set(keySchema, binary.BigEndian.AppendUint64(nil, v+1), pebble.Sync); err != nil {
			return applied, fmt.Errorf("store: record schema v%d: %w", v+1, err)
		}
		applied++
	}
	return applied, nil
}

// SchemaVersion reports the schema version of the store in dir without
// migrating it, and the version this binary would migrate it to.
func SchemaVersion(dir string) (have, want int, err error) {
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		return 0, 0, fmt.Errorf("store: open %s: %w", dir, err)
	}
	defer db.Close()
	v, err := readUint(db, keySchema)
	return int(v), len(migrations.All()), err
}

// Warmed is closed once the newest records (Config.RecentBytes) are
// loaded into memory after Open, or loading stopped. Reads before then are
// as correct, only served from disk.
func (s *Store) Warmed() <-chan struct{} { return s.warmed }

// Epoch is the random id made when this store was created. A resume
// position from another epoch cannot be honoured.
func (s *Store) Epoch() string { return s.epoch }

// Head returns the highest accepted offset (0 for an empty store). Every
// offset up to Head is durable and indexed, or was removed by retention.
func (s *Store) Head() uint64 { return s.head.Load() }

// Trimmed returns the highest offset that retention has deleted. A reader
// resuming after an offset below it may have missed killmails.
func (s *Store) Trimmed() uint64 { return s.trimmed.Load() }

// Changed returns a channel that is closed the next time Head advances.
// Call it again after each wake-up for the next change.
func (s *Store) Changed() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.changedMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
}

// Count returns the number of stored killmails.
func (s *Store) Count() uint64 { return s.ix.Len() }

// CountSystem returns the number of stored killmails in a system.
func (s *Store) CountSystem(system int64) uint64 { return s.ix.CountSystem(system) }

// Stats are figures about the store for health and metrics.
type Stats struct {
	Killmails uint64
	Head      uint64
	Trimmed   uint64
	DiskBytes uint64
	// RecentBytes is the memory holding the newest records.
	RecentBytes uint64
	Epoch       string
}

// Stats returns current figures. It does no I/O.
func (s *Store) Stats() Stats {
	return Stats{
		Killmails:   s.ix.Len(),
		Head:        s.Head(),
		Trimmed:     s.Trimmed(),
		DiskBytes:   s.db.Metrics().DiskSpaceUsage(),
		RecentBytes: s.recent.size(),
		Epoch:       s.epoch,
	}
}

// Close stops the writer after the writes already queued, flushes and
// closes Pebble. Writes after Close fail with ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopWarm()
		<-s.warmed
		close(s.stop)
		<-s.done
		if serr := s.writeSnapshot(); serr != nil {
			s.log.Warn("index snapshot not written; the next open rebuilds the index", "err", serr)
		}
		if ferr := s.db.Flush(); ferr != nil {
			err = fmt.Errorf("store: flush: %w", ferr)
		}
		if cerr := s.db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: close: %w", cerr)
		}
	})
	return err
}

// Run applies retention every RetentionInterval until ctx ends. Without a
// retention period it only waits. It returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	if s.cfg.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		cutoff := s.cfg.Now().Add(-s.cfg.Retention)
		if n, err := s.ApplyRetention(ctx, cutoff); err != nil && ctx.Err() == nil {
			s.log.Error("retention failed", "err", err)
		} else if n > 0 {
			s.log.Info("retention deleted killmails", "count", n, "cutoff", cutoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pebbleLogger sends Pebble's own log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
