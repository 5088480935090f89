package esi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Killmail fetches a killmail by id and hash (GET /killmails/{id}/{hash}/)
// and returns a fresh copy the caller owns. Answers are cached for
// KillmailTTL. An unknown id or hash (404, 422, 400) gives an error
// matching ErrNotFound; a body that is not a valid killmail for id gives
// one matching ErrBadResponse.
func (c *Client) Killmail(ctx context.Context, id int64, hash string) (*store.Killmail, error) {
	if id <= 0 || !validHash(hash) {
		return nil, fmt.Errorf("esi: killmail %d/%q: malformed id or hash: %w", id, hash, ErrNotFound)
	}
	key := strconv.FormatInt(id, 10) + "/" + hash
	if it := c.killmails.Get(key); it != nil {
		c.metrics.lookup("killmail", true)
		return c.own(it.Value(), hash), nil
	}
	c.metrics.lookup("killmail", false)
	raw, err := coalesce(ctx, c, "killmail:"+key, func(ctx context.Context) (*RawKillmail, error) {
		return c.fetchKillmail(ctx, id, hash, key)
	})
	if err != nil {
		return nil, err
	}
	return c.own(raw, hash), nil
}

func (c *Client) own(raw *RawKillmail, hash string) *store.Killmail {
	km := raw.Killmail()
	km.Hash = hash
	return km
}

func (c *Client) fetchKillmail(ctx context.Context, id int64, hash, key string) (*RawKillmail, error) {
	var raw *RawKillmail
	err := c.call(ctx, request{route: "killmail", method: http.MethodGet, path: "/killmails/" + key + "/"}, func(b []byte) error {
		r, err := decodeRaw(b)
		if err != nil {
			return err
		}
		if r.KillmailID != id {
			return fmt.Errorf("answer is killmail %d", r.KillmailID)
		}
		if err := r.Killmail().Validate(time.Now()); err != nil {
			return err
		}
		raw = r
		return nil
	})
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusBadRequest {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	c.killmails.Set(key, raw, c.cfg.KillmailTTL)
	return raw, nil
}

// validHash accepts ESI killmail hashes: hex, at most 64 characters.
func validHash(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, r := range h {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') && (r < 'A' || r > 'F') {
			return false
		}
	}
	return true
}

// Corporation returns a corporation's name and ticker (GET
// /corporations/{id}/), cached for NameTTL. Unknown ids give an error
// matching ErrNotFound and are remembered for NegativeTTL.
func (c *Client) Corporation(ctx context.Context, id int64) (Entity, error) {
	return c.entity(ctx, kindCorporation, id)
}

// Alliance returns an alliance's name and ticker (GET /alliances/{id}/),
// cached like Corporation.
func (c *Client) Alliance(ctx context.Context, id int64) (Entity, error) {
	return c.entity(ctx, kindAlliance, id)
}

// entityKind is a route with names and tickers.
type entityKind struct{ route, path string }

var (
	kindCorporation = entityKind{route: "corporation", path: "/corporations/"}
	kindAlliance    = entityKind{route: "alliance", path: "/alliances/"}
)

func (c *Client) entity(ctx context.Context, kind entityKind, id int64) (Entity, error) {
	c.ensureLoaded(ctx)
	if e, ok := c.cachedEntity(id); ok {
		if e.Name == "" {
			return e, fmt.Errorf("esi: %s %d: %w", kind.route, id, ErrNotFound)
		}
		return e, nil
	}
	return coalesce(ctx, c, kind.route+":"+strconv.FormatInt(id, 10), func(ctx context.Context) (Entity, error) {
		return c.fetchEntity(ctx, kind, id)
	})
}

func (c *Client) cachedEntity(id int64) (Entity, bool) {
	it := c.entities.Get(id)
	c.metrics.lookup("entity", it != nil)
	if it == nil {
		return Entity{}, false
	}
	return it.Value(), true
}

func (c *Client) fetchEntity(ctx context.Context, kind entityKind, id int64) (Entity, error) {
	var body struct {
		Name   string `json:"name"`
		Ticker string `json:"ticker"`
	}
	r := request{route: kind.route, method: http.MethodGet, path: kind.path + strconv.FormatInt(id, 10) + "/"}
	err := c.call(ctx, r, func(b []byte) error {
		if err := decodeObject(b, &body); err != nil {
			return err
		}
		if body.Name == "" {
			return errors.New("no name")
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		c.storeEntity(Entity{ID: id}, c.cfg.NegativeTTL)
		return Entity{ID: id}, err
	}
	if err != nil {
		return Entity{}, err
	}
	e := Entity{ID: id, Name: body.Name, Ticker: body.Ticker}
	c.storeEntity(e, c.cfg.NameTTL)
	c.storeName(Name{ID: id, Name: e.Name, Category: kind.route}, c.cfg.NameTTL)
	c.markDirty(id)
	return e, nil
}

// Type returns the name of an inventory type (GET /universe/types/{id}/),
// cached for NameTTL with the other names.
func (c *Client) Type(ctx context.Context, id int64) (string, error) {
	c.ensureLoaded(ctx)
	if n, ok := c.cachedName(id); ok {
		if n.Name == "" {
			return "", fmt.Errorf("esi: type %d: %w", id, ErrNotFound)
		}
		return n.Name, nil
	}
	n, err := coalesce(ctx, c, "type:"+strconv.FormatInt(id, 10), func(ctx context.Context) (Name, error) {
		return c.fetchType(ctx, id)
	})
	return n.Name, err
}

func (c *Client) fetchType(ctx context.Context, id int64) (Name, error) {
	var body struct {
		Name string `json:"name"`
	}
	r := request{route: "type", method: http.MethodGet, path: "/universe/types/" + strconv.FormatInt(id, 10) + "/"}
	err := c.call(ctx, r, func(b []byte) error {
		if err := decodeObject(b, &body); err != nil {
			return err
		}
		if body.Name == "" {
			return errors.New("no name")
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		c.storeName(Name{ID: id}, c.cfg.NegativeTTL)
	}
	if err != nil {
		return Name{}, err
	}
	n := Name{ID: id, Name: body.Name, Category: "inventory_type"}
	c.storeName(n, c.cfg.NameTTL)
	c.markDirty(id)
	return n, nil
}

// System returns a solar system (GET /universe/systems/{id}/), cached for
// NameTTL. The embedded data.Catalog knows every system of the SDE; this
// is for the ones it lacks.
func (c *Client) System(ctx context.Context, id int64) (System, error) {
	it := c.systems.Get(id)
	c.metrics.lookup("system", it != nil)
	if it != nil {
		return it.Value(), nil
	}
	return coalesce(ctx, c, "system:"+strconv.FormatInt(id, 10), func(ctx context.Context) (System, error) {
		var s System
		r := request{route: "system", method: http.MethodGet, path: "/universe/systems/" + strconv.FormatInt(id, 10) + "/"}
		err := c.call(ctx, r, func(b []byte) error {
			if err := decodeObject(b, &s); err != nil {
				return err
			}
			if s.ID != id || s.Name == "" {
				return fmt.Errorf("answer is system %d %q", s.ID, s.Name)
			}
			return nil
		})
		if err != nil {
			return System{}, err
		}
		c.systems.Set(id, s, c.cfg.NameTTL)
		return s, nil
	})
}

// decodeObject decodes a JSON object body into v.
func decodeObject(b []byte, v any) error {
	if firstByte(b) != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}

// firstByte is the first non-space byte of b, 0 if none.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}
