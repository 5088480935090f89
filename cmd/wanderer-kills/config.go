package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// flagSet wraps flag.FlagSet so every flag has an environment variable,
// whose value becomes the flag's default, and --help lists both.
type flagSet struct {
	*flag.FlagSet
	env  func(string) string
	errs []error
}

func newFlagSet(name, summary string, env func(string) string, out io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), env: env}
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: wanderer-kills %s [flags]\n\n%s\n\nflags (environment variable in brackets):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func (fs *flagSet) lookup(envName string) (string, bool) {
	if envName == "" {
		return "", false
	}
	v := strings.TrimSpace(fs.env(envName))
	return v, v != ""
}

func withEnv(usage, envName string) string {
	if envName == "" {
		return usage
	}
	return usage + " [" + envName + "]"
}

func (fs *flagSet) str(p *string, name, envName, def, usage string) {
	if v, ok := fs.lookup(envName); ok {
		def = v
	}
	fs.StringVar(p, name, def, withEnv(usage, envName))
}

func (fs *flagSet) integer(p *int, name, envName string, def int, usage string) {
	if v, ok := fs.lookup(envName); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			fs.errs = append(fs.errs, fmt.Errorf("%s=%q: not an integer", envName, v))
		} else {
			def = n
		}
	}
	fs.IntVar(p, name, def, withEnv(usage, envName))
}

func (fs *flagSet) duration(p *time.Duration, name, envName string, def time.Duration, usage string) {
	if v, ok := fs.lookup(envName); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			fs.errs = append(fs.errs, fmt.Errorf("%s=%q: not a duration (like 10s, 5m): %w", envName, v, err))
		} else {
			def = d
		}
	}
	fs.DurationVar(p, name, def, withEnv(usage, envName))
}

func (fs *flagSet) boolean(p *bool, name, envName string, def bool, usage string) {
	if v, ok := fs.lookup(envName); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fs.errs = append(fs.errs, fmt.Errorf("%s=%q: not a boolean", envName, v))
		} else {
			def = b
		}
	}
	fs.BoolVar(p, name, def, withEnv(usage, envName))
}

// parse parses args and reports environment values that did not parse.
func (fs *flagSet) parse(args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(fs.errs) > 0 {
		return fmt.Errorf("bad environment: %v", fs.errs)
	}
	return nil
}

// storeFlags are the flags every subcommand that opens the store shares.
type storeFlags struct {
	dataDir       string
	retentionDays int
	cacheMB       int
	recentMB      int
	logLevel      string
	logFormat     string
}

func (f *storeFlags) register(fs *flagSet) {
	fs.str(&f.dataDir, "data-dir", "WK_DATA_DIR", "./var", "Pebble store directory")
	fs.integer(&f.retentionDays, "retention", "KILLMAIL_RETENTION_DAYS", 0, "days of killmails to keep by kill time; 0 keeps all")
	fs.integer(&f.cacheMB, "cache-mb", "WK_CACHE_MB", 64, "MiB of Pebble's block cache")
	fs.integer(&f.recentMB, "recent-mb", "WK_RECENT_MB", 128, "MiB of memory holding the newest records (live tail, resumes, recent queries); 0 for none")
	fs.str(&f.logLevel, "log-level", "WK_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	fs.str(&f.logFormat, "log-format", "WK_LOG_FORMAT", "text", "log format: text or json")
}

func (f *storeFlags) validate() error {
	if f.dataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	if f.retentionDays < 0 {
		return fmt.Errorf("--retention must be >= 0, got %d", f.retentionDays)
	}
	if f.cacheMB < 1 {
		return fmt.Errorf("--cache-mb must be >= 1, got %d", f.cacheMB)
	}
	if f.recentMB < 0 {
		return fmt.Errorf("--recent-mb must be >= 0, got %d", f.recentMB)
	}
	return nil
}

func (f *storeFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
}
