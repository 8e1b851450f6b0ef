// Package page serves studyd's live study page over HTTP: the studies list, one
// study's enrollment over time against its target split, and the fleet's uptake, all
// server-rendered HTML with SVG charts from files embedded in the binary. Figures move
// without a reload: the page follows the projection checkpoint over server-sent
// events and fetches its content again when the views advance.
//
// The page reads the views through the small interfaces below, declared here and
// implemented by the NATS adapter; it knows nothing of NATS.
package page

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

//go:embed templates/*.html static/*
var files embed.FS

// Views reads the materialised views. Every method is safe for concurrent use and
// returns the views as they are, however far the projector has got.
type Views interface {
	// Studies returns every study view.
	Studies(ctx context.Context) ([]projections.StudyView, error)
	// Timeline returns the hour or day buckets of study ref, or of every study when ref
	// is nil, in any order.
	Timeline(ctx context.Context, ref *domain.StudyRef, period projections.Period) ([]projections.StudyBucket, error)
	// Uptake returns the uptake tallies of period: of the sources named (source keys
	// such as normandy/recipe/42), or of every source when none is.
	Uptake(ctx context.Context, period projections.Period, sources ...string) (map[projections.UptakeKey]uint64, error)
}

// Checkpoints follows the projection checkpoint: the log sequence every view reflects.
type Checkpoints interface {
	// Checkpoint returns the current checkpoint (0 before the first flush).
	Checkpoint(ctx context.Context) (uint64, error)
	// Watch sends each new checkpoint until ctx ends, then closes the channel. A slow
	// reader may miss intermediate values, never the latest.
	Watch(ctx context.Context) (<-chan uint64, error)
}

// Fleet reads what the fleet page shows beside the views.
type Fleet interface {
	FleetStatus(ctx context.Context) (FleetStatus, error)
}

// FleetStatus is the state of studyd's pipeline: how far the views trail the log,
// what was refused, and what waits in each command partition.
type FleetStatus struct {
	LogSeq        uint64 // the last commit's sequence in the log
	ProjectionSeq uint64 // the checkpoint
	Rejections    uint64 // rejections recorded in the log
	// Parked is commands set aside after failing the same way repeatedly (studyctl
	// parked lists and re-drives them).
	Parked     uint64
	Partitions []Partition
}

// Partition is one command partition's backlog.
type Partition struct {
	Name        string
	Pending     uint64 // commands not yet delivered
	AckPending  uint64 // delivered, not yet settled
	Redelivered uint64
}

// Lag is how many log sequences the views trail the log by.
func (s FleetStatus) Lag() uint64 {
	if s.LogSeq <= s.ProjectionSeq {
		return 0
	}
	return s.LogSeq - s.ProjectionSeq
}

// Backlog is the commands waiting over all partitions.
func (s FleetStatus) Backlog() uint64 {
	var n uint64
	for _, p := range s.Partitions {
		n += p.Pending + p.AckPending
	}
	return n
}

// Config is what the page needs.
type Config struct {
	Views       Views
	Checkpoints Checkpoints
	Fleet       Fleet
	// Ratios returns a study's recorded target ratios (branch → weight); nil or empty
	// means equal weights. Default: the ratios recorded in the study view.
	Ratios func(v *projections.StudyView) map[string]float64
	// LiveInterval is the least time between two live updates sent to one browser
	// (default 1 s): the projector flushes far more often under load, and each update
	// renders the page again.
	LiveInterval time.Duration
	Logger       *slog.Logger
}

// Handler serves the page. Mount it at the root of a mux; it answers GET /,
// /study/{object}/{key}, /fleet, /events and /static/.
type Handler struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New returns the page's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Views == nil || cfg.Checkpoints == nil || cfg.Fleet == nil {
		return nil, errors.New("page: Views, Checkpoints and Fleet are required")
	}
	if cfg.Ratios == nil {
		cfg.Ratios = RecordedRatios
	}
	if cfg.LiveInterval <= 0 {
		cfg.LiveInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	funcs := template.FuncMap{"iso": iso, "when": when}
	for _, name := range []string{"studies", "study", "fleet", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("page: static files: %w", err)
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /{$}", h.studies)
	h.mux.HandleFunc("GET /study/{object}/{key}", h.study)
	h.mux.HandleFunc("GET /fleet", h.fleet)
	h.mux.HandleFunc("GET /events", h.events)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// RecordedRatios is a study's target split as recorded in its view; nil (equal
// weights) when none was recorded.
func RecordedRatios(v *projections.StudyView) map[string]float64 { return recordedRatios(v) }

// layout is what every page's frame shows.
type layout struct {
	Title string
	Nav   string // studies or fleet
	Seq   uint64
	Body  any
}

// render writes page name with body, or only its content when the live script asks
// for a fragment.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, body any) {
	seq, err := h.cfg.Checkpoints.Checkpoint(r.Context())
	if err != nil {
		h.cfg.Logger.Warn("page: read checkpoint", "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
	tmpl := "layout.html"
	if r.URL.Query().Get("fragment") == "1" {
		tmpl = "content"
	}
	var b strings.Builder
	if err := h.pages[name].ExecuteTemplate(&b, tmpl, layout{Title: title, Nav: nav, Seq: seq, Body: body}); err != nil {
		h.cfg.Logger.Error("page: render", "page", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	h.cfg.Logger.Warn("page", "path", r.URL.Path, "err", err)
	h.render(w, r, status, "error", http.StatusText(status), "", err.Error())
}

func (h *Handler) studies(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	views, err := h.cfg.Views.Studies(ctx)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	days, err := h.cfg.Views.Timeline(ctx, nil, projections.PeriodDay)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	totals, err := h.cfg.Views.Uptake(ctx, projections.PeriodTotal)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	h.render(w, r, http.StatusOK, "studies", "Studies", "studies", studiesModel(views, days, totals, h.cfg.Ratios))
}

func (h *Handler) study(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := domain.StudyRef{Object: domain.Object(r.PathValue("object")), Key: r.PathValue("key")}
	period := projections.PeriodHour
	if r.URL.Query().Get("period") == "day" {
		period = projections.PeriodDay
	}
	views, err := h.cfg.Views.Studies(ctx)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	i := slices.IndexFunc(views, func(v projections.StudyView) bool { return v.Study() == ref })
	if i < 0 {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("no study %s %q in the views", ref.Object, ref.Key))
		return
	}
	buckets, err := h.cfg.Views.Timeline(ctx, &ref, period)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	days := buckets
	if period != projections.PeriodDay {
		if days, err = h.cfg.Views.Timeline(ctx, &ref, projections.PeriodDay); err != nil {
			h.fail(w, r, http.StatusServiceUnavailable, err)
			return
		}
	}
	// Only the study's recipe and action: a fleet has many sources and hours.
	head := rowOf(&views[i], days, nil, h.cfg.Ratios)
	var sources []string
	if head.HasRecipe {
		sources = append(sources, domain.RecipeSource(head.RecipeID))
	}
	if head.Action != "" {
		sources = append(sources, domain.ActionSource(head.Action))
	}
	uptake, totals := map[projections.UptakeKey]uint64{}, map[projections.UptakeKey]uint64{}
	if len(sources) > 0 {
		if uptake, err = h.cfg.Views.Uptake(ctx, period, sources...); err != nil {
			h.fail(w, r, http.StatusServiceUnavailable, err)
			return
		}
		if totals, err = h.cfg.Views.Uptake(ctx, projections.PeriodTotal, sources...); err != nil {
			h.fail(w, r, http.StatusServiceUnavailable, err)
			return
		}
	}
	m := studyModel(&views[i], period, buckets, days, uptake, totals, h.cfg.Ratios)
	h.render(w, r, http.StatusOK, "study", m.Row.Slug, "studies", m)
}

func (h *Handler) fleet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	period := projections.PeriodHour
	if r.URL.Query().Get("period") == "day" {
		period = projections.PeriodDay
	}
	uptake, err := h.cfg.Views.Uptake(ctx, period)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	totals, err := h.cfg.Views.Uptake(ctx, projections.PeriodTotal)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	st, err := h.cfg.Fleet.FleetStatus(ctx)
	if err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	h.render(w, r, http.StatusOK, "fleet", "Fleet", "fleet", fleetModel(period, uptake, totals, st))
}

// events streams the checkpoint as server-sent events ("seq"), at most one per
// LiveInterval, always ending on the latest.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx := r.Context()
	ch, err := h.cfg.Checkpoints.Watch(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	tick := time.NewTicker(h.cfg.LiveInterval)
	defer tick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	var latest, sent uint64
	for {
		select {
		case <-ctx.Done():
			return
		case seq, ok := <-ch:
			if !ok {
				return
			}
			latest = max(latest, seq)
		case <-tick.C:
			if latest == sent {
				continue
			}
			sent = latest
			if _, err := fmt.Fprintf(w, "event: seq\ndata: %d\n\n", sent); err != nil {
				return
			}
			flusher.Flush()
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

// iso formats a time for a datetime attribute.
func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// when formats a time for people: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// sortedKeys returns m's keys in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
