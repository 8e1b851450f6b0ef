package page

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
)

// memViews is the page's data folded in memory from a simulated fleet: the same pure
// folds the projector materialises.
type memViews struct {
	mu       sync.Mutex
	studies  *projections.Studies
	uptake   *projections.Uptake
	timeline *projections.StudyTimeline
	seq      uint64
	watchers []chan uint64
}

func newMemViews() *memViews {
	return &memViews{studies: projections.NewStudies(), uptake: projections.NewUptake(), timeline: projections.NewStudyTimeline()}
}

func (m *memViews) apply(pos uint64, c *eventstore.Commit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.studies.Apply(pos, c)
	m.uptake.Apply(pos, c)
	m.timeline.Apply(pos, c)
	m.seq = pos
	for _, w := range m.watchers {
		select {
		case w <- pos:
		default:
		}
	}
}

func (m *memViews) Studies(context.Context) ([]projections.StudyView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []projections.StudyView
	for _, v := range m.studies.Views {
		out = append(out, *v)
	}
	return out, nil
}

func (m *memViews) Timeline(_ context.Context, ref *domain.StudyRef, p projections.Period) ([]projections.StudyBucket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []projections.StudyBucket
	for k, b := range m.timeline.Buckets {
		if k.Period == p && (ref == nil || k.Study == *ref) {
			out = append(out, *b)
		}
	}
	return out, nil
}

func (m *memViews) Uptake(_ context.Context, p projections.Period, sources ...string) (map[projections.UptakeKey]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[projections.UptakeKey]uint64{}
	for k, n := range m.uptake.Counts {
		if k.Period == p && (len(sources) == 0 || slices.Contains(sources, k.Source)) {
			out[k] = n
		}
	}
	return out, nil
}

func (m *memViews) Checkpoint(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq, nil
}

func (m *memViews) Watch(ctx context.Context) (<-chan uint64, error) {
	ch := make(chan uint64, 1)
	m.mu.Lock()
	m.watchers = append(m.watchers, ch)
	m.mu.Unlock()
	return ch, nil
}

func (m *memViews) FleetStatus(context.Context) (FleetStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return FleetStatus{LogSeq: m.seq + 2, ProjectionSeq: m.seq, Rejections: 3, Parked: 4,
		Partitions: []Partition{{Name: "p0", Pending: 4}, {Name: "p1", AckPending: 1}}}, nil
}

// fleet runs a small simulated fleet through the real command handler into v.
func fleet(t *testing.T, v *memViews) {
	t.Helper()
	ctx := context.Background()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	f, err := simulate.New(simulate.Config{Clients: 40, Days: 2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Each(func(cmd domain.Command) error {
		res, err := h.Handle(ctx, cmd, app.Source{})
		if err != nil || res.Duplicate {
			return nil // rejected: not in the log
		}
		v.apply(res.Record.Position, &res.Record.Commit)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newServer(t *testing.T) (*memViews, *httptest.Server) {
	t.Helper()
	v := newMemViews()
	fleet(t, v)
	h, err := New(Config{Views: v, Checkpoints: v, Fleet: v, LiveInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return v, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// cell finds the value of column col in the row or block data-attr="key".
func cell(html, attr, key, col string) string {
	i := strings.Index(html, attr+`="`+key+`"`)
	if i < 0 {
		return ""
	}
	m := regexp.MustCompile(`data-col="` + regexp.QuoteMeta(col) + `"[^>]*>([^<]*)<`).FindStringSubmatch(html[i:])
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

func TestPagesShowTheViews(t *testing.T) {
	t.Parallel()
	v, srv := newServer(t)
	views, _ := v.Studies(context.Background())
	if len(views) == 0 {
		t.Fatal("the simulated fleet enrolled nobody")
	}
	code, html := get(t, srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200:\n%s", code, html)
	}
	for _, sv := range views {
		key := string(sv.Object) + "." + sv.Key
		if got, want := cell(html, "data-study", key, "enrolled"), fmt.Sprint(sv.Enrolled); got != want {
			t.Errorf("studies list: %s enrolled = %q, want %q", key, got, want)
		}
		if got, want := cell(html, "data-study", key, "active"), fmt.Sprint(sv.Active); got != want {
			t.Errorf("studies list: %s active = %q, want %q", key, got, want)
		}
		code, page := get(t, srv.URL+studyHref(sv.Study()))
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", studyHref(sv.Study()), code)
		}
		for name, b := range sv.Branches {
			if got, want := cell(page, "data-branch", name, "enrolled"), fmt.Sprint(b.Enrolled); got != want {
				t.Errorf("study %s: branch %s enrolled = %q, want %q", key, name, got, want)
			}
		}
		if len(sv.Branches) == 0 && !strings.Contains(page, `<th scope="col" class="num">enrollments</th>`) {
			t.Errorf("add-on study %s: no enrollments line (it has no branches)", key)
		}
		if strings.Contains(page, `<th scope="col" class="num"></th>`) {
			t.Errorf("study %s: a chart has a series without a name", key)
		}
		if !strings.Contains(page, `<svg class="chart"`) || !strings.Contains(page, `role="img"`) {
			t.Errorf("study %s: no accessible SVG chart", key)
		}
		if code, _ := get(t, srv.URL+studyHref(sv.Study())+"?period=day"); code != http.StatusOK {
			t.Errorf("GET %s?period=day = %d, want 200", studyHref(sv.Study()), code)
		}
	}
	code, html = get(t, srv.URL+"/fleet")
	if code != http.StatusOK {
		t.Fatalf("GET /fleet = %d, want 200", code)
	}
	for _, want := range []string{`data-col="lag">2 commits`, `data-col="rejections">3`, `data-col="parked">4`, `data-col="backlog">5 commands`, "normandy/runner"} {
		if !strings.Contains(html, want) {
			t.Errorf("fleet page lacks %q", want)
		}
	}
	if code, _ := get(t, srv.URL+"/study/preference_study/no-such-study"); code != http.StatusNotFound {
		t.Errorf("unknown study = %d, want 404", code)
	}
	code, frag := get(t, srv.URL+"/?fragment=1")
	if code != http.StatusOK || strings.Contains(frag, "<html") || !strings.Contains(frag, `id="studies"`) {
		t.Errorf("fragment = %d, want 200 with the content only:\n%.300s", code, frag)
	}
	if code, css := get(t, srv.URL+"/static/style.css"); code != http.StatusOK || !strings.Contains(css, "--alarm") {
		t.Errorf("GET /static/style.css = %d, want the embedded stylesheet", code)
	}
}

func TestSRMLight(t *testing.T) {
	t.Parallel()
	view := func(a, b uint64) *projections.StudyView {
		return &projections.StudyView{Object: domain.PreferenceStudy, Key: "s", Enrolled: a + b,
			Branches: map[string]projections.BranchCount{"control": {Enrolled: a}, "treatment": {Enrolled: b}}}
	}
	tests := []struct {
		name   string
		view   *projections.StudyView
		ratios map[string]float64
		// recorded: use the page's default, the ratios the view recorded
		recorded bool
		want     string
	}{
		{name: "even split, equal weights", view: view(500, 510), want: "ok"},
		{name: "90/10 against equal weights", view: view(900, 100), want: "alarm"},
		{name: "90/10 against its recorded 9:1", view: view(900, 100), ratios: map[string]float64{"control": 9, "treatment": 1}, want: "ok"},
		{name: "90/10 against the 9:1 its enrollments recorded (the default)", view: func() *projections.StudyView {
			v := view(900, 100)
			v.Ratios = []recipe.Ratio{{Slug: "control", Ratio: 9}, {Slug: "treatment", Ratio: 1}}
			return v
		}(), recorded: true, want: "ok"},
		{name: "50/50 against the 9:1 its enrollments recorded", view: func() *projections.StudyView {
			v := view(500, 500)
			v.Ratios = []recipe.Ratio{{Slug: "control", Ratio: 9}, {Slug: "treatment", Ratio: 1}}
			return v
		}(), recorded: true, want: "alarm"},
		{name: "one branch", view: &projections.StudyView{Enrolled: 3, Branches: map[string]projections.BranchCount{"a": {Enrolled: 3}}}, want: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ratios := func(*projections.StudyView) map[string]float64 { return tt.ratios }
			if tt.recorded {
				ratios = RecordedRatios
			}
			row := rowOf(tt.view, nil, nil, ratios)
			if row.SRM.Class != tt.want {
				t.Errorf("light = %s (%s), want %s", row.SRM.Class, row.SRM.Text, tt.want)
			}
		})
	}
}

func TestEventsFollowTheCheckpoint(t *testing.T) {
	t.Parallel()
	v, srv := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	// The subscription exists once the stream answered; a new commit must arrive.
	seq, _ := v.Checkpoint(ctx)
	c := eventstore.Commit{Client: "x", At: time.Now()}
	v.apply(seq+1, &c)
	sc := bufio.NewScanner(resp.Body)
	want := fmt.Sprintf("data: %d", seq+1)
	for sc.Scan() {
		if sc.Text() == want {
			return
		}
	}
	t.Fatalf("event stream ended without %q: %v", want, sc.Err())
}

// TestSRMOverTimeEndsAtTheStudysSRM: the last point of a study's SRM line is the test
// of all its enrollments against its recorded split, as the light shows it.
func TestSRMOverTimeEndsAtTheStudysSRM(t *testing.T) {
	t.Parallel()
	v, _ := newServer(t)
	ctx := context.Background()
	views, _ := v.Studies(ctx)
	tested := 0
	for i := range views {
		sv := &views[i]
		if len(sv.Ratios) < 2 || sv.Enrolled == 0 {
			continue
		}
		tested++
		ref := sv.Study()
		days, _ := v.Timeline(ctx, &ref, projections.PeriodDay)
		m := studyModel(sv, projections.PeriodDay, days, days, nil, nil, RecordedRatios)
		var srm *chart
		for _, c := range m.Charts {
			if c.ID == "srm" {
				srm = c
			}
		}
		if srm == nil || len(srm.Series) != 1 || len(srm.Series[0].Values) == 0 {
			t.Fatalf("%s: no SRM line", ref)
		}
		pvals := srm.Series[0].Values
		if got, want := pvals[len(pvals)-1], m.Health.PValue; got != want {
			t.Errorf("%s: SRM line ends at p = %v, the study's SRM is p = %v (%s)", ref, got, want, m.Health.RatiosFrom)
		}
		if want := ratioText(RecordedRatios(sv)); m.Row.Ratios != want || want == "equal weights" {
			t.Errorf("%s: target split shown %q, want the recorded %q", ref, m.Row.Ratios, want)
		}
	}
	if tested == 0 {
		t.Fatal("no study with recorded ratios in the simulated fleet")
	}
}

func TestFleetErrorRateOverTime(t *testing.T) {
	t.Parallel()
	h := time.Date(2018, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	key := func(src string, s domain.UptakeStatus, start int64) projections.UptakeKey {
		return projections.UptakeKey{Source: src, Status: s, Period: projections.PeriodHour, Start: start}
	}
	uptake := map[projections.UptakeKey]uint64{
		key(domain.SourceRunner, domain.RunnerSuccess, h):                     98,
		key(domain.SourceRunner, domain.RunnerNetworkError, h):                2,
		key(domain.SourceRunner, domain.RunnerSuccess, h+7200):                10,
		key(domain.RecipeSource(7), domain.RecipeExecutionError, h+7200):      1,
		key(domain.RecipeSource(8), domain.RecipeSuccess, h+7200):             3,
		key(domain.ActionSource("addon-study"), domain.ActionSuccess, h+3600): 5,
	}
	m := fleetModel(projections.PeriodHour, uptake, nil, FleetStatus{})
	var c *chart
	for _, ch := range m.Charts {
		if ch.ID == "error-rate" {
			c = ch
		}
	}
	if c == nil {
		t.Fatal("the fleet page has no error-rate chart")
	}
	want := map[string][]float64{"runner": {0.02, 0, 0}, "actions": {0, 0, 0}, "recipes": {0, 0, 0.25}}
	if len(c.X) != 3 {
		t.Fatalf("axis has %d hours, want 3 (gaps included)", len(c.X))
	}
	for _, s := range c.Series {
		if fmt.Sprint(s.Values) != fmt.Sprint(want[s.Name]) {
			t.Errorf("%s error rate = %v, want %v", s.Name, s.Values, want[s.Name])
		}
	}
}
