// Package ingest brings killmails in: the live feeds (R2Z2, RedisQ), the
// zKillboard API client, and the pipeline that turns what they bring into
// stored killmails (parse → validate → fetch missing bodies from ESI →
// enrich → store, where the store indexes and wakes the live fan-out).
//
// Feeds persist their position in the store in the same commit as the
// killmails it brought, so a restart, even after kill -9, resumes with no
// gap and no duplicate. Enrichment that fails does not hold a killmail
// back: it is stored without the missing names, marked, and a background
// pass (Pipeline.RunEnrichment) completes it in place later.
//
// Backfill imports history offline through a Pipeline built with Quiet
// set (stored and indexed, not pushed live): EVE Ref archives read as a
// bzip2+tar stream (ReadEVERef), JSONL files (ReadJSONL) and zKillboard's
// daily history. Records are decoded in parallel and stored in order, in
// batches whose commit carries the source's progress, so a second run
// adds nothing and an interrupted one resumes where it stopped.
//
// Upstream garbage (HTML, truncated or mistyped JSON, 5xx storms, hashes
// ESI rejects) is logged with a reason and counted; the loops back off
// and go on. Nothing already stored is touched by a bad answer.
//
// ingest imports store and esi; it must not import server or cmd.
package ingest
