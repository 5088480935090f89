package ingest

import (
	"errors"
	"maps"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// maxExamples is how many records a Tally names per rejection reason.
const maxExamples = 3

// Tally counts what a backfill did with its records. Read is Added +
// Updated + Duplicate + Rejected; Skipped records were done by an earlier
// run and not read again.
type Tally struct {
	Read      int
	Added     int
	Updated   int
	Duplicate int
	Rejected  int
	Skipped   int
	// Reasons counts the rejected records by reason (a garbage reason
	// such as "syntax", "invalid <field>", "refused_by_esi").
	Reasons map[string]int
	// Examples names up to three rejected records per reason, with the
	// error ("killmails/123.json: …").
	Examples map[string][]string
}

// Add adds o's counts to t.
func (t *Tally) Add(o Tally) {
	t.Read += o.Read
	t.Added += o.Added
	t.Updated += o.Updated
	t.Duplicate += o.Duplicate
	t.Rejected += o.Rejected
	t.Skipped += o.Skipped
	for r, n := range o.Reasons {
		t.addReason(r, n)
	}
	for r, ex := range o.Examples {
		for _, e := range ex {
			t.addExample(r, e)
		}
	}
}

func (t Tally) clone() Tally {
	c := t
	c.Reasons = maps.Clone(t.Reasons)
	c.Examples = make(map[string][]string, len(t.Examples))
	for r, ex := range t.Examples {
		c.Examples[r] = append([]string(nil), ex...)
	}
	return c
}

// reject counts one refused record.
func (t *Tally) reject(where string, err error) {
	t.Rejected++
	reason := RejectReason(err)
	t.addReason(reason, 1)
	t.addExample(reason, where+": "+err.Error())
}

func (t *Tally) addReason(reason string, n int) {
	if t.Reasons == nil {
		t.Reasons = make(map[string]int)
	}
	t.Reasons[reason] += n
}

func (t *Tally) addExample(reason, example string) {
	if len(t.Examples[reason]) >= maxExamples {
		return
	}
	if t.Examples == nil {
		t.Examples = make(map[string][]string)
	}
	t.Examples[reason] = append(t.Examples[reason], example)
}

// results counts the store's verdicts; names[i] says where res[i] came
// from.
func (t *Tally) results(res []store.Result, names []string) {
	for i, r := range res {
		switch r.Status {
		case store.Added:
			t.Added++
		case store.Updated:
			t.Updated++
		case store.Duplicate:
			t.Duplicate++
		default:
			err := r.Err
			if err == nil {
				err = errors.New("ingest: refused without a reason")
			}
			t.reject(names[i], err)
		}
	}
}

// RejectReason names why a record was refused, for counts and logs: the
// garbage reason, "invalid <field>" for a killmail failing validation,
// "refused_by_esi" for an id and hash ESI does not know, else "other".
func RejectReason(err error) string {
	var ge *GarbageError
	var ve *store.ValidationError
	switch {
	case errors.As(err, &ge):
		return ge.Reason
	case errors.As(err, &ve):
		return "invalid " + ve.Field
	case errors.Is(err, esi.ErrNotFound):
		return "refused_by_esi"
	}
	return "other"
}
