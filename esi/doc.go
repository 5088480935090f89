// Package esi talks to EVE Online's ESI API: it decodes killmails
// (DecodeKillmail, Client.Killmail), resolves ids to names and tickers
// (Client.Names, Corporation, Alliance, Type, System) and adds those names
// to killmails (Enricher).
//
// The Client owns everything that makes it a polite ESI citizen: a rate
// limiter, the shared error budget (X-ESI-Error-Limit-Remain/-Reset, 420,
// 429 Retry-After), a circuit breaker, per-call timeouts, TTL caches with
// coalescing of identical in-flight lookups, and optional persistence of
// learned names through a small key-value interface (KV).
//
// esi imports store (for the Killmail shape) and data (for the embedded
// ship and system names); it must not import ingest, server or cmd.
package esi
