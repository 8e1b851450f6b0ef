package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// newTable is studyctl's one table shape: an upper-case header, columns two spaces
// apart, no borders, no trailing spaces. Callers add rows in a stable order.
func newTable(header ...any) table.Writer {
	t := table.NewWriter()
	style := table.StyleDefault
	style.Options = table.Options{}
	style.Box.PaddingLeft = ""
	style.Box.PaddingRight = "  "
	style.Format.Header = text.FormatUpper
	t.SetStyle(style)
	t.SuppressTrailingSpaces()
	if len(header) > 0 {
		t.AppendHeader(header)
	}
	return t
}

// row is a table row with every empty value shown as "-".
func row(cells ...any) table.Row {
	r := make(table.Row, len(cells))
	for i, v := range cells {
		switch x := v.(type) {
		case string:
			r[i] = orDash(x)
		case time.Time:
			r[i] = fmtTime(x)
		case fmt.Stringer:
			r[i] = orDash(x.String())
		default:
			r[i] = v
		}
	}
	return r
}

// writeTable renders t to w, ending with a newline.
func writeTable(w io.Writer, t table.Writer) error {
	if _, err := io.WriteString(w, t.Render()+"\n"); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// writeFields prints "name  value" pairs as a two-column table without a header.
func writeFields(w io.Writer, pairs ...[2]string) error {
	t := newTable()
	for _, p := range pairs {
		t.AppendRow(row(p[0], p[1]))
	}
	return writeTable(w, t)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
