package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
)

// RatioSample picks an index into ratios the way Firefox's Sampling.ratioSample does,
// so a client lands in the branch Firefox would have chosen: the first 12 hex digits of
// sha256 over the JSON-quoted input are compared, as strings, with each cumulative
// fraction of the total scaled to 48 bits. It returns an error for an empty list or a
// zero total.
func RatioSample(input string, ratios []uint64) (int, error) {
	if len(ratios) == 0 {
		return 0, fmt.Errorf("%w: ratio sample needs at least one ratio", ErrInvalid)
	}
	var total uint64
	for _, r := range ratios {
		total += r
	}
	if total == 0 {
		return 0, fmt.Errorf("%w: ratios %v add up to 0", ErrInvalid, ratios)
	}
	quoted, _ := json.Marshal(input) // a string always marshals
	sum := sha256.Sum256(quoted)
	h := hex.EncodeToString(sum[:])[:12]
	var running uint64
	for k := 0; k < len(ratios)-1; k++ {
		running += ratios[k]
		if h <= fractionToKey(running, total) {
			return k, nil
		}
	}
	return len(ratios) - 1, nil
}

// fractionToKey is Firefox's Sampling.fractionToKey: floor(num/den · (2^48−1)) as 12
// zero-padded hex digits, computed exactly (Firefox uses doubles, which are exact at
// this precision for any ratio a recipe carries).
func fractionToKey(num, den uint64) string {
	maxKey := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 48), big.NewInt(1))
	v := new(big.Int).Mul(maxKey, new(big.Int).SetUint64(num))
	v.Quo(v, new(big.Int).SetUint64(den))
	return fmt.Sprintf("%012x", v)
}

// PreferenceBranchInput is the string Firefox hashes to pick a preference study branch.
func PreferenceBranchInput(user ClientID, slug string) string {
	return fmt.Sprintf("%s-%s-branch", user, slug)
}

// AddonBranchInput is the string Firefox hashes to pick an add-on study branch.
func AddonBranchInput(user ClientID, slug string) string {
	return fmt.Sprintf("%s-%s-addon-branch", user, slug)
}
