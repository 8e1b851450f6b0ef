package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{name: "no build info", ok: false, want: "(devel)"},
		{name: "installed at a version", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.4.2"}}, want: "v1.4.2"},
		{name: "vcs stamped", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, want: "0123456789ab-dirty"},
		{name: "devel", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, want: "(devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parse(tt.bi, tt.ok); got.Version != tt.want || got.GoVersion == "" {
				t.Errorf("parse = %+v, want version %q and a Go version", got, tt.want)
			}
		})
	}
	if v := Version(); v == "" {
		t.Errorf("Version() is empty")
	}
}
