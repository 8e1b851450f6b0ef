package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		bi           *debug.BuildInfo
		ok           bool
		want, semVer string
	}{
		{name: "no build info", ok: false, want: "(devel)", semVer: "0.0.0-dev"},
		{name: "installed at a version", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.4.2"}}, want: "v1.4.2", semVer: "1.4.2"},
		{name: "vcs stamped", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, want: "0123456789ab-dirty", semVer: "0.0.0-dev+0123456789ab.dirty"},
		{name: "devel", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, want: "(devel)", semVer: "0.0.0-dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parse(tt.bi, tt.ok)
			if got.Version != tt.want || got.GoVersion == "" {
				t.Errorf("parse = %+v, want version %q and a Go version", got, tt.want)
			}
			if sv := got.semVer(); sv != tt.semVer {
				t.Errorf("semVer() = %q, want %q", sv, tt.semVer)
			}
		})
	}
	if v := Version(); v == "" {
		t.Errorf("Version() is empty")
	}
}
