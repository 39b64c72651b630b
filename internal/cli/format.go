package cli

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FormatHelp documents the consume --format placeholders for the command's help text.
const FormatHelp = `%k key, %v value, %h headers (k=v,k=v), %o offset, %p partition, ` +
	`%t timestamp (ms since epoch), %T topic, %% a literal %; escapes \n \t \r \\`

// Format renders consumed records. It is compiled once from a format string by ParseFormat.
type Format struct {
	parts []formatPart
}

// formatPart is either literal text (verb == 0) or one placeholder verb.
type formatPart struct {
	literal string
	verb    byte
}

// ParseFormat compiles a format string. Placeholders are %k %v %h %o %p %t %T and %%; the
// escapes \n, \t, \r and \\ are expanded; any other backslash sequence is kept as written. An
// unknown placeholder or a trailing lone '%' is an error.
func ParseFormat(s string) (*Format, error) {
	f := &Format{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.parts = append(f.parts, formatPart{literal: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				lit = append(lit, c)
				continue
			}
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				lit = append(lit, '\\', s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("invalid format %q: trailing %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit = append(lit, '%')
			case 'k', 'v', 'h', 'o', 'p', 't', 'T':
				flush()
				f.parts = append(f.parts, formatPart{verb: v})
			default:
				return nil, fmt.Errorf("invalid format %q: unknown placeholder %%%c (known: %%k %%v %%h %%o %%p %%t %%T %%%%)", s, v)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// Append appends r rendered with the format to dst. A null key or value renders as nothing.
func (f *Format) Append(dst []byte, r *kgo.Record) []byte {
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			dst = append(dst, p.literal...)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 't':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'T':
			dst = append(dst, r.Topic...)
		}
	}
	return dst
}
