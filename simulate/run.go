package simulate

import (
	"time"

	"github.com/studyd/studyd/domain"
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

	pInstallFailure   = 0.05 // an add-on study's install fails
	pPrefExecError    = 0.01 // a preference study's recipe throws before enrolling
	pHeartbeatFailure = 0.03 // the heartbeat prompt fails to show
)

// run builds client ci's recipe run on day at time at, as the 2018 runner would report
// it: the runner status, then (if the recipes were fetched) each action's status and each
// matching live recipe's status and arguments.
func (f *Fleet) run(ci, day int, at time.Time) domain.Command {
	cmd := f.newCommand(ci, domain.CommandRecipeRun, at)
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
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return cmd // nothing was fetched: no actions, no recipes
	}
	status := make(map[string]domain.UptakeStatus, len(actions))
	for _, a := range actions {
		status[a] = f.actionStatus()
		cmd.Actions = append(cmd.Actions, domain.ActionReport{Name: a, Status: status[a]})
	}
	for j, r := range f.recipes {
		if !r.live(day) || !f.matches(ci, j, day) {
			continue
		}
		rep := domain.RecipeReport{ID: r.ID, Action: r.Action, Arguments: r.arguments(day, "", "", "")}
		switch s, known := status[r.Action]; {
		case !known, s == domain.ActionNetworkError, s == domain.ActionServerError:
			rep.Status = domain.RecipeInvalidAction // no action code to run it with
		case s == domain.ActionPreExecutionError:
			rep.Status = domain.RecipeActionDisabled
		default:
			rep.Status, rep.Arguments = f.execute(ci, day, r)
		}
		cmd.Recipes = append(cmd.Recipes, rep)
	}
	return cmd
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
func (f *Fleet) execute(ci, day int, r Recipe) (domain.UptakeStatus, domain.RecipeArguments) {
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
	if r.Object == domain.PreferenceStudy {
		if st == domain.StateNone && f.rng.Float64() < pPrefExecError {
			return domain.RecipeExecutionError, plain
		}
		return domain.RecipeSuccess, plain
	}
	switch st {
	case domain.StateEnrolled:
		en, _ := c.state.Find(study)
		return domain.RecipeSuccess, r.arguments(day, en.AddonID, en.AddonVersion, "")
	case domain.StateUnenrolled:
		return domain.RecipeSuccess, plain // the study exists: 2018 started nothing
	}
	if r.PausedOn(day) {
		return domain.RecipeSuccess, plain // enrollment paused: nothing installed
	}
	if f.rng.Float64() < pInstallFailure {
		return domain.RecipeExecutionError, r.arguments(day, "", "", installErrors[f.rng.IntN(len(installErrors))])
	}
	return domain.RecipeSuccess, r.arguments(day, r.AddonID, r.AddonVersion, "")
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
