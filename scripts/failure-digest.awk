#!/usr/bin/awk -f
# failure-digest.awk: from `go test -v` output, the lines each failed test wrote itself
# (t.Log, t.Error, t.Fatal: "    file_test.go:N: ..."), each with at most 12 of its
# continuation lines, and without the dumps of container and studyd logs ("last log
# lines of ...") that fill a CI log's tail. A panic's first lines are kept too.
# Tests run one after another (none is parallel), so a test's lines lie between its
# "=== RUN" and its "--- FAIL"/"--- PASS".
/^=== RUN / { n = 0; more = 0; next }
/^    [A-Za-z0-9_]+\.go:[0-9]+: / {
	if ($0 ~ /last log lines of /) { more = 0; next }
	kept[++n] = $0
	more = 12
	next
}
/^        / && more > 0 { kept[++n] = $0; more--; next }
/^--- FAIL: / {
	print $0
	for (i = 1; i <= n; i++) print kept[i]
	n = 0
	next
}
/^--- PASS: |^--- SKIP: / { n = 0; next }
{ more = 0 }
/^panic: / { panicking = 30 }
panicking > 0 { print; panicking-- }
