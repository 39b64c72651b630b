package cli

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one without newline", in: "a", want: []string{"a"}},
		{name: "one with newline", in: "a\n", want: []string{"a"}},
		{name: "empty lines kept", in: "a\n\nb\n", want: []string{"a", "", "b"}},
		{name: "crlf", in: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "longer than buffer", in: long + "\nz", want: []string{long, "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := NewLineReader(strings.NewReader(tt.in))
			var got []string
			for {
				line, err := lr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(line))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d lines %.40q, want %d lines %.40q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestRecordFromLine(t *testing.T) {
	headers := []kgo.RecordHeader{{Key: "h", Value: []byte("1")}}
	tests := []struct {
		name      string
		line      string
		sep       string
		wantKey   []byte
		wantValue string
	}{
		{name: "no separator", line: "k:v", sep: "", wantKey: nil, wantValue: "k:v"},
		{name: "split at first", line: "k:v:w", sep: ":", wantKey: []byte("k"), wantValue: "v:w"},
		{name: "multi-char separator", line: "k::v", sep: "::", wantKey: []byte("k"), wantValue: "v"},
		{name: "separator missing", line: "value", sep: ":", wantKey: nil, wantValue: "value"},
		{name: "empty key", line: ":v", sep: ":", wantKey: []byte{}, wantValue: "v"},
		{name: "tab", line: "k\tv", sep: "\t", wantKey: []byte("k"), wantValue: "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RecordFromLine([]byte(tt.line), tt.sep, headers)
			if !reflect.DeepEqual(r.Key, tt.wantKey) {
				t.Errorf("key = %q (nil %v), want %q (nil %v)", r.Key, r.Key == nil, tt.wantKey, tt.wantKey == nil)
			}
			if string(r.Value) != tt.wantValue {
				t.Errorf("value = %q, want %q", r.Value, tt.wantValue)
			}
			if !reflect.DeepEqual(r.Headers, headers) {
				t.Errorf("headers = %v, want %v", r.Headers, headers)
			}
		})
	}
}
