package domain

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/studyd/studyd/recipe"
)

// FuzzCanonicalJSON holds canonicalJSON to json.Marshal's bytes: the digests of
// commands already in the log were computed with json.Marshal, and a resend must keep
// its digest (or it would be refused as id_reused).
func FuzzCanonicalJSON(f *testing.F) {
	f.Add("recipe_run", "run-1", "client-1", int64(1520863200), "RUNNER_SUCCESS", "preference-experiment",
		uint64(42), `{"slug":"pref-flip-1","branches":[{"slug":"a<b>&c","ratio":1}]}`, "", uint8(0))
	f.Add("unenroll", "u\"\\\n\b\f\t\r\x01<>&\u2028\u2029\xff\xfe", "c\x00", int64(-62135596800), "", "", uint64(0), ``, "71.0", uint8(0xff))
	f.Add("x", "é漢字🎉", "", int64(253402300799), "", "", uint64(1<<63), `null`, "", uint8(3))
	f.Add("x", "", "", int64(253402300800), "", "", uint64(0), `[1, 2 ,"\u2028<"]`, "", uint8(5))
	f.Fuzz(func(t *testing.T, typ, id, client string, at int64, status, name string, recipeID uint64, args, version string, flags uint8) {
		c := Command{Type: CommandType(typ), CommandID: id, ClientID: ClientID(client),
			At: time.Unix(at, int64(flags)*1_000_003).UTC(), FirefoxVersion: version,
			RunnerStatus: UptakeStatus(status), StudiesEnabled: flags&1 != 0, Sideload: flags&2 != 0,
			Reason: Reason(name), AddonID: id, Preference: version}
		if flags&4 != 0 {
			c.Actions = []ActionReport{{Name: name, Status: UptakeStatus(status)}, {Name: id}}
		}
		if flags&8 != 0 {
			c.Recipes = []RecipeReport{{ID: RecipeID(recipeID), Action: name, Status: UptakeStatus(status), Arguments: recipe.Arguments(args)},
				{ID: 1, Arguments: recipe.Arguments(args)}}
		}
		if flags&16 != 0 {
			c.Study = &StudyRef{Object: Object(name), Key: id}
		}
		if flags&32 != 0 {
			c.Actions = []ActionReport{}
		}
		want, wantErr := json.Marshal(c)
		got, err := c.canonicalJSON()
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("canonicalJSON error %v, json.Marshal error %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("canonicalJSON\n got %s\nwant %s", got, want)
		}
	})
}
