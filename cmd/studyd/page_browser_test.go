package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/simulate"
)

// chromiumInstall is how to get the browser this test drives (CI's .ci/run does it).
const chromiumInstall = "apt-get update && apt-get install -y chromium"

// ScreenshotsEnv names the directory the browser test saves its screenshots in
// (default a temporary directory of the test).
const ScreenshotsEnv = "STUDYD_SCREENSHOTS"

// requireChromium returns the chromium binary, or fails the test saying how to install
// it: a browser test that skips proves nothing.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium is not installed; the study page's browser test needs it: %s", chromiumInstall)
	return ""
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStudyPageInBrowser starts studyd, feeds it a small simulated fleet, and reads
// every page in a real chromium: the figures shown must be the views' figures, and a
// new command must show up on an open page without a reload.
func TestStudyPageInBrowser(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	// studyd, on free ports, with its data in a temporary directory.
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--data", t.TempDir(), "--nats-listen", natsAddr, "--http", httpAddr, "--partitions", "2"},
			func(string) string { return "" }, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("studyd did not stop")
		}
	}()
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(stdout.String(), "studyd ready") }, "studyd ready", &stderr)
	nc, err := client.Connect(client.ConnConfig{URLs: "nats://" + natsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// A small fleet: two days of 40 clients.
	fleet, err := simulate.New(simulate.Config{Clients: 40, Days: 2, Seed: 17})
	if err != nil {
		t.Fatal(err)
	}
	// Published onto the command stream, as Firefox clients would: far faster than
	// one request-reply each.
	var lastAt time.Time
	began := time.Now()
	stats, err := client.PublishCommands(ctx, nc, func() (domain.Command, bool) {
		cmd, ok := fleet.Next()
		if ok {
			lastAt = cmd.At
		}
		return cmd, ok
	}, client.PublishOptions{})
	if err != nil {
		t.Fatalf("publish the fleet: %v (%+v)", err, stats)
	}
	last := waitApplied(t, ctx, js)
	t.Logf("fed %d commands (%d commits) in %v", stats.Acked, last, time.Since(began).Round(time.Millisecond))
	views := waitViews(t, ctx, js, last)
	if len(views) == 0 {
		t.Fatal("the fleet enrolled nobody")
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1366, 900))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// Generous: under make test the browser shares two cores with the race detector.
	tab, cancelTab := context.WithTimeout(browser, 4*time.Minute)
	defer cancelTab()
	base := "http://" + httpAddr

	t.Logf("views caught up after %v", time.Since(began).Round(time.Millisecond))
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KB) at %v", path, len(png)/1024, time.Since(began).Round(time.Millisecond))
	}
	// text reads an element's text in one evaluation, so that a live update swapping
	// the content in between cannot pull the node away from under the read; it waits
	// (bounded) for the element to exist.
	text := func(sel string) string {
		t.Helper()
		quoted, _ := json.Marshal(sel)
		expr := `(function(){ var n = document.querySelector(` + string(quoted) + `); return n === null ? null : n.innerText; })()`
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := chromedp.Run(tab, chromedp.Evaluate[*string](expr))
			if err != nil {
				t.Fatalf("read %s: %v", sel, err)
			}
			if s != nil {
				return strings.TrimSpace(*s)
			}
			if time.Now().After(deadline) {
				t.Fatalf("read %s: no such element for 30 s", sel)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The studies list: every study, with the view's totals.
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#studies"))); err != nil {
		t.Fatalf("load the studies page: %v", err)
	}
	rows, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#studies tbody tr[data-study]").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != len(views) {
		t.Errorf("studies page lists %d studies, the views hold %d", rows, len(views))
	}
	for _, v := range views {
		row := fmt.Sprintf(`#studies tr[data-study="%s.%s"]`, v.Object, v.Key)
		for col, want := range map[string]string{
			"enrolled": strconv.FormatUint(v.Enrolled, 10), "active": strconv.FormatInt(v.Active, 10),
			"unenrolled": strconv.FormatUint(sum(v.Unenrolled), 10), "failed": strconv.FormatUint(sum(v.EnrollFailed), 10),
		} {
			if got := text(row + ` [data-col="` + col + `"]`); got != want {
				t.Errorf("studies page: %s %s = %q, the view says %s", v.Study(), col, got, want)
			}
		}
	}
	shot("studies")
	// Keyboard: the first Tab reaches the skip link, which leads to the content.
	if err := chromedp.Do(tab, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	focused, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if focused != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}

	// One study: the pref study with the most enrollments, per branch against the view.
	study := views[0]
	for _, v := range views {
		if v.Object == domain.PreferenceStudy && (study.Object != domain.PreferenceStudy || v.Enrolled > study.Enrolled) {
			study = v
		}
	}
	studyURL := base + "/study/" + string(study.Object) + "/" + study.Key
	for _, period := range []string{"day", "hour"} {
		if err := chromedp.Do(tab, chromedp.Navigate(studyURL+"?period="+period), chromedp.WaitVisible(chromedp.CSS("#branches"))); err != nil {
			t.Fatalf("load %s: %v", studyURL, err)
		}
		for name, b := range study.Branches {
			sel := fmt.Sprintf(`#branches tr[data-branch="%s"] [data-col="enrolled"]`, name)
			if got, want := text(sel), strconv.FormatUint(b.Enrolled, 10); got != want {
				t.Errorf("study page (%s): branch %s enrolled = %q, the view says %s", period, name, got, want)
			}
		}
		if got, want := text(`#summary [data-col="enrolled"]`), strconv.FormatUint(study.Enrolled, 10); got != want {
			t.Errorf("study page (%s): enrolled = %q, the view says %s", period, got, want)
		}
		unlabelled, err := chromedp.Run(tab, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("svg.chart")).filter(s =>
			s.getAttribute("role") !== "img" || !document.getElementById((s.getAttribute("aria-labelledby")||"").split(" ")[0])).length`))
		if err != nil {
			t.Fatal(err)
		}
		if unlabelled != 0 {
			t.Errorf("study page (%s): %d charts without an accessible name", period, unlabelled)
		}
		shot("study-" + period)
	}

	// The fleet: uptake totals per source against the views.
	v, err := client.ReadViews(ctx, js, client.UptakeViews)
	if err != nil {
		t.Fatal(err)
	}
	uptake, _, err := v.Projections()
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(chromedp.CSS("#sources"))); err != nil {
		t.Fatalf("load the fleet page: %v", err)
	}
	var runner projections.HealthCounts
	for k, n := range uptake.Counts {
		if k.Source == domain.SourceRunner && k.Period == projections.PeriodTotal {
			runner.Add(k.Status, n)
		}
	}
	if got, want := text(`#sources tr[data-source="normandy/runner"] [data-col="good"]`), strconv.FormatUint(runner.Good, 10); got != want {
		t.Errorf("fleet page: runner good = %q, the views say %s", got, want)
	}
	if got, want := text(`#sources tr[data-source="normandy/runner"] [data-col="bad"]`), strconv.FormatUint(runner.Bad, 10); got != want {
		t.Errorf("fleet page: runner bad = %q, the views say %s", got, want)
	}
	shot("fleet")

	// Live: with the study page open, a new client enrolls; the page shows it without
	// a reload (a marker set on the window survives).
	if err := chromedp.Do(tab, chromedp.Navigate(studyURL), chromedp.WaitVisible(chromedp.CSS("#branches"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.__notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool { return text("#live-status") == "live" }, "the page's event stream", &stderr)
	var recipe simulate.Recipe
	for _, r := range fleet.Recipes() {
		if ref, ok := r.Study(); ok && ref == study.Study() {
			recipe = r
		}
	}
	cmd := domain.Command{Type: domain.CommandRecipeRun, CommandID: "browser-live-1", ClientID: "browser-live-client",
		At: lastAt.Add(time.Minute), RunnerStatus: domain.RunnerSuccess,
		Actions: []domain.ActionReport{{Name: recipe.Action, Status: domain.ActionSuccess}},
		Recipes: []domain.RecipeReport{{ID: recipe.ID, Action: recipe.Action, Status: domain.RecipeSuccess,
			Arguments: recipe.Arguments}}}
	out, err := client.Submit(ctx, nc, cmd)
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("submit the live command: %+v, %v", out, err)
	}
	want := strconv.FormatUint(study.Enrolled+1, 10)
	waitFor(t, 20*time.Second, func() bool { return text(`#summary [data-col="enrolled"]`) == want },
		"the new enrollment on the open page ("+want+")", &stderr)
	notReloaded, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.__notReloaded === true`))
	if err != nil {
		t.Fatal(err)
	}
	if !notReloaded {
		t.Errorf("the page reloaded to show the update; want it updated in place")
	}
	if got, err := strconv.ParseUint(text("#seq"), 10, 64); err != nil || got < out.Seq {
		t.Errorf("page header shows log sequence %d (%v), want at least %d", got, err, out.Seq)
	}
	shot("study-live")
}

// waitApplied waits until the command stream is empty (a work queue: every command
// settled) and returns the last commit's sequence.
func waitApplied(t *testing.T, ctx context.Context, js jetstream.JetStream) uint64 {
	t.Helper()
	var last uint64
	waitFor(t, 3*time.Minute, func() bool {
		cmds, err := js.Stream(ctx, client.CommandsStream)
		if err != nil {
			return false
		}
		info, err := cmds.Info(ctx)
		if err != nil || info.State.Msgs != 0 {
			return false
		}
		events, err := js.Stream(ctx, eventlog.EventsStream)
		if err != nil {
			return false
		}
		m, err := events.GetLastMsgForSubject(ctx, eventlog.EventSubjects)
		if err != nil {
			return false
		}
		last = m.Sequence
		return true
	}, "every command applied", nil)
	return last
}

// waitViews waits until the views reflect seq and returns the study views.
func waitViews(t *testing.T, ctx context.Context, js jetstream.JetStream, seq uint64) []projections.StudyView {
	t.Helper()
	var views []projections.StudyView
	waitFor(t, 30*time.Second, func() bool {
		v, err := client.ReadViews(ctx, js, client.StudyViews)
		if err != nil || v.Checkpoint < seq {
			return false
		}
		views = v.Studies
		return true
	}, fmt.Sprintf("views at seq %d", seq), nil)
	return views
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			if log != nil {
				t.Fatalf("waited %v for %s; studyd's log:\n%s", d, what, log.String())
			}
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
