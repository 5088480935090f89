package ingest

import (
	"context"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Item is one killmail as a source announces it: the ESI body when the
// source carried it, else the id and hash to fetch it by, and the
// zKillboard block when there is one.
type Item struct {
	KillmailID int64
	// Hash is the killmail hash, the ESI key with the id.
	Hash string
	// Killmail is the decoded body; nil means "fetch it from ESI". The
	// pipeline takes ownership.
	Killmail *store.Killmail
	// ZKB is zKillboard's block; nil when the source has none.
	ZKB *store.ZKB
}

// Processor takes items into the store with kv written in the same
// commit. *Pipeline implements it.
type Processor interface {
	Process(ctx context.Context, items []Item, kv map[string][]byte) ([]store.Result, error)
}

// Killmails is the write side of the store the pipeline uses.
// *store.Store implements it.
type Killmails interface {
	Submit(ctx context.Context, b store.Batch) (*store.Pending, error)
	Update(ctx context.Context, offset uint64, km *store.Killmail, kv map[string][]byte) error
	Get(ctx context.Context, killmailID int64) (store.Entry, error)
}

// KV is the store's persisted key-value API: cursors, the RedisQ queue id,
// the marks of unenriched killmails. *store.Store implements it.
type KV interface {
	GetKV(ctx context.Context, key string) ([]byte, error)
	PutKV(ctx context.Context, kv map[string][]byte) error
	ScanKV(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// Store is the store as the pipeline uses it: the write side and the
// key-value API. *store.Store implements it.
type Store interface {
	Killmails
	KV
}

// Bodies fetches killmail bodies from ESI by id and hash. *esi.Client
// implements it; an id or hash ESI refuses gives an error matching
// esi.ErrNotFound.
type Bodies interface {
	Killmail(ctx context.Context, id int64, hash string) (*store.Killmail, error)
}

// Enricher adds names to killmails with as few requests as it can,
// keeping what it finds when some lookups fail (and then returning an
// error). *esi.Enricher implements it.
type Enricher interface {
	EnrichMany(ctx context.Context, kms []*store.Killmail) error
}

// KV keys owned by this package.
const (
	// KeyR2Z2Sequence holds the last R2Z2 sequence handled, in decimal.
	KeyR2Z2Sequence = "ingest/r2z2/sequence"
	// KeyRedisQQueue holds the RedisQ queue id of this data directory.
	KeyRedisQQueue = "ingest/redisq/queue"
	// PrefixUnenriched starts the key of every killmail stored without all
	// its names: the prefix, then the killmail id in decimal.
	PrefixUnenriched = "ingest/unenriched/"
)
