package simulate

import (
	"errors"
	"fmt"
	"time"

	"github.com/studyd/studyd/domain"
)

// Defaults of Config's optional fields.
const (
	DefaultRunsPerDay   = 4 // Firefox's app.normandy.run_interval_seconds, 21600 s
	DefaultPrefStudies  = 4
	DefaultAddonStudies = 3
	DefaultOnline       = 0.9
	DefaultEventRate    = 0.03
)

// DefaultStart is the simulated time of the first run: the summer of the seed document.
var DefaultStart = time.Date(2018, time.June, 1, 0, 0, 0, 0, time.UTC)

// ErrConfig is wrapped by every Config validation error.
var ErrConfig = errors.New("simulate: invalid config")

// Config describes a simulated fleet. Zero optional fields take their defaults.
type Config struct {
	Clients int    // number of Firefox profiles
	Days    int    // simulated days
	Seed    uint64 // the same seed gives the same commands

	RunsPerDay   int       // recipe runs per day per online client (default 4)
	PrefStudies  int       // preference studies in the catalogue (default 4)
	AddonStudies int       // add-on studies in the catalogue (default 3)
	Start        time.Time // time of day 0 (default DefaultStart)
	// Online is the probability that a client runs at a given run slot (laptops sleep);
	// default 0.9.
	Online float64
	// EventRate is the probability that a run is followed by a user or operator signal
	// (opt-out, about:studies removal, add-on uninstall, pref change, unenroll);
	// default 0.03.
	EventRate float64
	// Versions is the fleet's mix of Firefox versions: each client runs one, drawn by
	// share, and its commands carry it (0 is a client that does not say, decided by the
	// 2018 rules). Empty: every client is unversioned, as in the seed. MixedFleet is a
	// fleet of 2018 and later clients.
	Versions []VersionShare
}

// VersionShare is the share of a fleet that runs one Firefox version.
type VersionShare struct {
	Version domain.FirefoxVersion
	Share   float64
}

// MixedFleet mixes unversioned clients with one version of each era: 2018 (60), the
// suitabilities era (70), the enrollmentId era (80) and current Firefox (100).
var MixedFleet = []VersionShare{{0, 0.2}, {60, 0.2}, {70, 0.2}, {80, 0.2}, {100, 0.2}}

// withDefaults returns c with its zero optional fields set.
func (c Config) withDefaults() Config {
	if c.RunsPerDay == 0 {
		c.RunsPerDay = DefaultRunsPerDay
	}
	if c.PrefStudies == 0 {
		c.PrefStudies = DefaultPrefStudies
	}
	if c.AddonStudies == 0 {
		c.AddonStudies = DefaultAddonStudies
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Online == 0 {
		c.Online = DefaultOnline
	}
	if c.EventRate == 0 {
		c.EventRate = DefaultEventRate
	}
	return c
}

// Validate reports settings that cannot describe a fleet.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(cond bool, format string, args ...any) {
		if cond {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
		}
	}
	bad(c.Clients < 1, "clients is %d (want at least 1)", c.Clients)
	bad(c.Days < 1, "days is %d (want at least 1)", c.Days)
	bad(c.RunsPerDay < 1 || c.RunsPerDay > 24*60, "runs per day is %d (want 1..1440)", c.RunsPerDay)
	bad(c.PrefStudies < 0 || c.PrefStudies > 1000, "pref studies is %d (want 0..1000)", c.PrefStudies)
	bad(c.AddonStudies < 0 || c.AddonStudies > 1000, "add-on studies is %d (want 0..1000)", c.AddonStudies)
	bad(c.Online < 0 || c.Online > 1, "online is %g (want a probability, 0..1)", c.Online)
	bad(c.EventRate < 0 || c.EventRate > 1, "event rate is %g (want a probability, 0..1)", c.EventRate)
	total := 0.0
	for _, v := range c.Versions {
		bad(v.Share < 0 || v.Share > 1, "version %s has share %g (want 0..1)", v.Version, v.Share)
		bad(v.Version > domain.MaxFirefoxVersion, "version %d is not a Firefox version (at most %d)", v.Version, domain.MaxFirefoxVersion)
		total += v.Share
	}
	bad(len(c.Versions) > 0 && total <= 0, "versions have no share (want shares adding up to more than 0)")
	return errors.Join(errs...)
}

// interval is the time between two runs of one client.
func (c Config) interval() time.Duration { return 24 * time.Hour / time.Duration(c.RunsPerDay) }
