package simulate

import (
	"encoding/json"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

// Probabilities of the simulated runner's failures, per run, per action and per recipe.
// They are small, as in the field, but large enough that a few thousand runs show each.
const (
	pRunnerServerError  = 0.015
	pRunnerNetworkError = 0.015
	pRunnerBadSignature = 0.004

	pActionNetworkError = 0.002 // the action's code could not be fetched
	pActionServerError  = 0.001 // the action's code was invalid
	pActionPreExecution = 0.003 // preExecution threw: the action is disabled for the run
	pActionPostExecute  = 0.003 // postExecution threw: no finalize

	pInstallFailure   = 0.05  // an add-on study's install fails
	pUpdateFailure    = 0.2   // a later branched add-on study's update fails
	pBadSignature     = 0.004 // a later client finds a recipe's signature invalid
	pFilterBroken     = 0.004 // a later client's filter evaluation throws
	pPrefExecError    = 0.01  // a preference study's recipe throws before enrolling
	pHeartbeatFailure = 0.03  // the heartbeat prompt fails to show
)

// run builds client ci's recipe run on day at time at, as the 2018 runner would report
// it: the runner status, then (if the recipes were fetched) each action's status and each
// matching live recipe's status and arguments.
//
// A client that says its Firefox version reports as that version did: no remote-action
// statuses from Firefox 65 on (their draws become the local actions' outcomes), only the
// actions its version had, RECIPE_DIDNT_MATCH_FILTER for the live recipes it does not
// match and, now and then, a bad signature or a broken filter (Firefox 65 on); from
// Firefox 96 no action statuses and no status for a matching recipe.
func (f *Fleet) run(ci, day int, at time.Time) domain.Command {
	cmd := f.newCommand(ci, domain.CommandRecipeRun, at)
	v := f.clients[ci].version
	switch u := f.rng.Float64(); {
	case u < pRunnerServerError:
		cmd.RunnerStatus = domain.RunnerServerError
	case u < pRunnerServerError+pRunnerNetworkError:
		cmd.RunnerStatus = domain.RunnerNetworkError
	case u < pRunnerServerError+pRunnerNetworkError+pRunnerBadSignature:
		cmd.RunnerStatus = domain.RunnerInvalidSignature
	default:
		cmd.RunnerStatus = domain.RunnerSuccess
	}
	if cmd.RunnerStatus.SentBy(v) != nil {
		cmd.RunnerStatus = domain.RunnerServerError // local actions: the fetch failed on the server side
	}
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return cmd // nothing was fetched: no actions, no recipes
	}
	current := v != 0 && !v.Has(domain.RuleExecutionUptake)
	status := make(map[string]domain.UptakeStatus, len(actions)+1)
	for _, a := range append(actions, ActionRollback) {
		if !hasAction(v, a) || (a == ActionRollback && len(f.cfg.Versions) == 0) {
			continue
		}
		status[a] = f.actionStatus()
		if status[a].SentBy(v) != nil {
			status[a] = domain.ActionSuccess // a local action is never fetched
		}
		if current {
			continue // current Firefox reports no action statuses
		}
		cmd.Actions = append(cmd.Actions, domain.ActionReport{Name: a, Status: status[a]})
	}
	later := v != 0 && v.Has(domain.RuleFilterStatuses)
	for j, r := range f.recipes {
		if !r.live(day) {
			continue
		}
		rep := domain.RecipeReport{ID: r.ID, Action: r.Action, Arguments: r.arguments(day, "", "", "")}
		s, known := status[r.Action]
		switch {
		case !f.matches(ci, j, day):
			if !later {
				continue // 2018: a recipe whose filter does not match is not reported
			}
			rep.Status = domain.RecipeDidntMatchFilter
		case (!known || s == domain.ActionNetworkError || s == domain.ActionServerError) && domain.RecipeInvalidAction.SentBy(v) == nil:
			rep.Status = domain.RecipeInvalidAction // no action code to run it with
		case !known:
			continue // later Firefox: an unknown action's recipe only gets an error log
		case s == domain.ActionPreExecutionError:
			rep.Status = domain.RecipeActionDisabled
		case later && f.rng.Float64() < pBadSignature:
			rep.Status = domain.RecipeInvalidSignature
		case later && f.rng.Float64() < pFilterBroken:
			rep.Status = domain.RecipeFilterBroken
		default:
			rep.Status, rep.Arguments = f.execute(ci, day, r)
		}
		if current && rep.Status.Matched() {
			rep.Status = "" // current Firefox reports nothing for a matching recipe
		}
		cmd.Recipes = append(cmd.Recipes, rep)
	}
	return cmd
}

// hasAction reports whether Firefox v had action a. An unversioned client reports every
// action, as the seed's simulation always did.
func hasAction(v domain.FirefoxVersion, a string) bool {
	if v == 0 {
		return true
	}
	switch a {
	case ActionMultiPreference:
		return v.Has(domain.RuleMultiPreference)
	case ActionBranchedAddon:
		return v.Has(domain.RuleBranchedAddon)
	case ActionRollout, ActionRollback:
		return v.Has(domain.RulePreferenceRollouts)
	}
	return true
}

// actionStatus draws one action's status for a run.
func (f *Fleet) actionStatus() domain.UptakeStatus {
	u := f.rng.Float64()
	for _, p := range []struct {
		p float64
		s domain.UptakeStatus
	}{
		{pActionNetworkError, domain.ActionNetworkError},
		{pActionServerError, domain.ActionServerError},
		{pActionPreExecution, domain.ActionPreExecutionError},
		{pActionPostExecute, domain.ActionPostExecutionError},
	} {
		if u < p.p {
			return p.s
		}
		u -= p.p
	}
	return domain.ActionSuccess
}

// execute runs recipe r on client ci on day as its action would and returns the
// recipe's status and its arguments, with the install outcome a client adds to an
// add-on study's.
func (f *Fleet) execute(ci, day int, r Recipe) (domain.UptakeStatus, recipe.Arguments) {
	c := &f.clients[ci]
	plain := r.arguments(day, "", "", "")
	study, isStudy := r.Study()
	switch {
	case !isStudy && r.Action == ActionHeartbeat && f.rng.Float64() < pHeartbeatFailure:
		return domain.RecipeExecutionError, plain
	case !isStudy, c.state.StudiesDisabled:
		// Opted out, a 2018 study action returned early: success, nothing done.
		return domain.RecipeSuccess, plain
	}
	st := c.state.StateOf(study)
	v := c.version
	if r.Object == domain.PreferenceStudy {
		if st == domain.StateNone && f.rng.Float64() < pPrefExecError {
			if v != 0 && v.Has(domain.RulePrefStudyEnrollFailed) {
				// Later Firefox sent enrollFailed: the client adds why its start failed.
				return domain.RecipeExecutionError, withField(plain, "enrollError", "invalid-type")
			}
			return domain.RecipeExecutionError, plain
		}
		return domain.RecipeSuccess, plain
	}
	branched := v != 0 && v.Has(domain.RuleBranchedAddon) && r.Action == ActionBranchedAddon
	switch st {
	case domain.StateEnrolled:
		en, _ := c.state.Find(study)
		if branched && en.AddonID != "" && r.RevisedOn(day) && en.AddonVersion != r.AddonVersionOn(day) {
			if f.rng.Float64() < pUpdateFailure {
				return domain.RecipeExecutionError, withField(plain, "updateError", "download-failure")
			}
			return domain.RecipeSuccess, r.arguments(day, en.AddonID, r.AddonVersionOn(day), "")
		}
		return domain.RecipeSuccess, r.arguments(day, en.AddonID, en.AddonVersion, "")
	case domain.StateUnenrolled:
		return domain.RecipeSuccess, plain // the study exists: 2018 started nothing
	}
	if r.PausedOn(day) {
		return domain.RecipeSuccess, plain // enrollment paused: nothing installed
	}
	if branched && f.noAddonBranch(ci, r, day) {
		return domain.RecipeSuccess, plain // a branch without an add-on: nothing to install
	}
	if f.rng.Float64() < pInstallFailure {
		return domain.RecipeExecutionError, r.arguments(day, "", "", installErrors[f.rng.IntN(len(installErrors))])
	}
	return domain.RecipeSuccess, r.arguments(day, r.AddonID, r.AddonVersionOn(day), "")
}

// noAddonBranch reports whether client ci's branch of a branched add-on study installs
// no add-on (its extensionApiId is null): the branch Firefox samples for it.
func (f *Fleet) noAddonBranch(ci int, r Recipe, day int) bool {
	a, err := domain.RecipeReport{ID: r.ID, Action: r.Action, Arguments: r.arguments(day, "", "", "")}.StudyArguments()
	if err != nil || len(a.Branches) == 0 {
		return false
	}
	ratios := make([]uint64, len(a.Branches))
	for i, b := range a.Branches {
		ratios[i] = b.Ratio
	}
	i, err := domain.RatioSample(domain.AddonBranchInput(f.clients[ci].id, a.StudySlug()), ratios)
	return err == nil && !a.Branches[i].HasAddon()
}

// withField returns args with one more field, as a client adds its outcome.
func withField(args recipe.Arguments, key, value string) recipe.Arguments {
	var m map[string]any
	if err := json.Unmarshal([]byte(args), &m); err != nil {
		return args
	}
	m[key] = value
	return recipe.Must(m)
}

// matches reports whether recipe j's filter matches client ci on day. It is a pure
// function of the seed, the client and the recipe, so it needs no memory: a Sample
// fraction of clients match, and a Drop fraction of those stop matching on a day
// after the recipe started (their study then ends with recipe-not-seen).
func (f *Fleet) matches(ci, j, day int) bool {
	r := f.recipes[j]
	h := mix(f.cfg.Seed, uint64(ci), uint64(j))
	if unit(h) >= r.Sample {
		return false
	}
	h = mix(h, 1, 0)
	span := min(r.EndDay, f.cfg.Days) - r.StartDay
	if span < 2 || unit(h) >= r.Drop {
		return true
	}
	dropDay := r.StartDay + 1 + int(unit(mix(h, 2, 0))*float64(span-1))
	return day < dropDay
}

// mix hashes three words into one (splitmix64 finalisers).
func mix(a, b, c uint64) uint64 {
	z := a ^ (b+1)*0x9e3779b97f4a7c15 ^ (c+1)*0xc2b2ae3d27d4eb4f
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }
