package cli

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormat(t *testing.T) {
	rec := &kgo.Record{
		Key:       []byte("key1"),
		Value:     []byte("hello"),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
		Timestamp: time.UnixMilli(1714557600123),
		Topic:     "orders",
		Partition: 3,
		Offset:    42,
	}
	tests := []struct {
		format  string
		rec     *kgo.Record
		want    string
		wantErr bool
	}{
		{format: "%v", rec: rec, want: "hello"},
		{format: "%k %v %h %o %p %t %T", rec: rec, want: "key1 hello a=1,b=2 42 3 1714557600123 orders"},
		{format: `%T/%p@%o\t%k=%v\n`, rec: rec, want: "orders/3@42\tkey1=hello\n"},
		{format: "100%% %v", rec: rec, want: "100% hello"},
		{format: `a\\n\r\q\`, rec: rec, want: "a\\n\r\\q\\"},
		{format: "", rec: rec, want: ""},
		{format: "[%k][%h]", rec: &kgo.Record{Value: []byte("v")}, want: "[][]"},
		{format: "%x", wantErr: true},
		{format: "%v%", wantErr: true},
	}
	for _, tt := range tests {
		f, err := ParseFormat(tt.format)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseFormat(%q) error = %v, want error %v", tt.format, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if got := string(f.Append(nil, tt.rec)); got != tt.want {
			t.Errorf("format %q = %q, want %q", tt.format, got, tt.want)
		}
	}
}

func TestFormatAppendsToDst(t *testing.T) {
	f, err := ParseFormat("%o,")
	if err != nil {
		t.Fatal(err)
	}
	buf := f.Append([]byte("x:"), &kgo.Record{Offset: 1})
	buf = f.Append(buf, &kgo.Record{Offset: 2})
	if got, want := string(buf), "x:1,2,"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
