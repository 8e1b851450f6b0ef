package srm

import "math"

// ChiSquaredSF is the survival function of the chi-squared distribution with df
// degrees of freedom: P(X ≥ x), the p-value of a chi-squared statistic x. It is the
// regularized upper incomplete gamma function Q(df/2, x/2).
func ChiSquaredSF(x float64, df int) float64 {
	switch {
	case df <= 0 || math.IsNaN(x):
		return math.NaN()
	case x <= 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x), by the series for
// P below a+1 and Lentz's continued fraction above (Numerical Recipes §6.2), each
// converging fast on its side.
func gammaQ(a, x float64) float64 {
	if x < a+1 {
		return 1 - gammaPSeries(a, x)
	}
	return gammaQFraction(a, x)
}

const (
	gammaEps   = 1e-15
	gammaIters = 1000
	gammaTiny  = 1e-300
)

func gammaPSeries(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	ap, del := a, 1/a
	total := del
	for range gammaIters {
		ap++
		del *= x / ap
		total += del
		if math.Abs(del) < math.Abs(total)*gammaEps {
			break
		}
	}
	return total * math.Exp(-x+a*math.Log(x)-lg)
}

func gammaQFraction(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	b := x + 1 - a
	c := 1 / gammaTiny
	d := 1 / b
	h := d
	for i := 1; i <= gammaIters; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < gammaTiny {
			d = gammaTiny
		}
		c = b + an/c
		if math.Abs(c) < gammaTiny {
			c = gammaTiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < gammaEps {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}
