// Package buildinfo says which build of studyd is running, from the Go build
// information (runtime/debug.ReadBuildInfo): the module version it was installed as
// (go install …@v1.2.3), else the VCS revision the build stamped, else "(devel)".
// studyd --version, studyctl --version, the micro services and studyd_build_info all
// show it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Info is one build's identity.
type Info struct {
	Version   string `json:"version"`            // semantic version, revision or "(devel)"
	Revision  string `json:"revision,omitempty"` // the VCS revision, if stamped
	Modified  bool   `json:"modified,omitempty"` // the tree had uncommitted changes
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Read returns the running binary's build information.
func Read() Info {
	once.Do(func() { info = parse(debug.ReadBuildInfo()) })
	return info
}

// Version is Read().Version.
func Version() string { return Read().Version }

// SemVer is the version in the semantic-version form NATS micro services require:
// the module version without its leading "v", else "0.0.0-dev" with the revision as
// build metadata ("0.0.0-dev+0123456789ab.dirty").
func SemVer() string { return Read().semVer() }

func (in Info) semVer() string {
	v := in.Version
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	sv := "0.0.0-dev"
	if in.Revision != "" {
		sv += "+" + in.Revision[:min(12, len(in.Revision))]
		if in.Modified {
			sv += ".dirty"
		}
	}
	return sv
}

func parse(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return in
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	switch v := bi.Main.Version; {
	case v != "" && v != "(devel)":
		in.Version = v
	case in.Revision != "":
		in.Version = in.Revision[:min(12, len(in.Revision))]
		if in.Modified {
			in.Version += "-dirty"
		}
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	return in
}
