package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSplitBrokers(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "localhost:9092", want: []string{"localhost:9092"}},
		{in: "a:1, b:2 ,,c:3,", want: []string{"a:1", "b:2", "c:3"}},
		{in: "", wantErr: true},
		{in: " , ", wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitBrokers(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SplitBrokers(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitBrokers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveBrokers(t *testing.T) {
	tests := []struct {
		name    string
		flag    string
		flagSet bool
		env     string
		want    []string
		wantErr string
	}{
		{name: "default", want: []string{DefaultBrokers}},
		{name: "env", env: "e:1,e:2", want: []string{"e:1", "e:2"}},
		{name: "flag wins over env", flag: "f:1", flagSet: true, env: "e:1", want: []string{"f:1"}},
		{name: "flag without env", flag: "f:1", flagSet: true, want: []string{"f:1"}},
		{name: "empty flag given", flag: "", flagSet: true, env: "e:1", wantErr: "no brokers given"},
		{name: "env without brokers", env: " , ", wantErr: `$SAMSA_BROKERS=" , ": no brokers given`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveBrokers(tt.flag, tt.flagSet, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseKeyValue(t *testing.T) {
	tests := []struct {
		in      string
		want    KeyValue
		wantErr bool
	}{
		{in: "retention.ms=1000", want: KeyValue{"retention.ms", "1000"}},
		{in: "k=", want: KeyValue{"k", ""}},
		{in: "k=a=b", want: KeyValue{"k", "a=b"}},
		{in: " k =v", want: KeyValue{"k", "v"}},
		{in: "novalue", wantErr: true},
		{in: "=v", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseKeyValue(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseKeyValue(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseKeyValue(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseConfigs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr bool
	}{
		{name: "none", in: nil, want: nil},
		{name: "two", in: []string{"a=1", "b=x=y"}, want: map[string]string{"a": "1", "b": "x=y"}},
		{name: "duplicate", in: []string{"a=1", "a=2"}, wantErr: true},
		{name: "malformed", in: []string{"a"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfigs(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			var flat map[string]string
			if got != nil {
				flat = map[string]string{}
				for k, v := range got {
					flat[k] = *v
				}
			}
			if !reflect.DeepEqual(flat, tt.want) {
				t.Errorf("got %v, want %v", flat, tt.want)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	got, err := ParseHeaders([]string{"a=1", "a=2", "b="})
	if err != nil {
		t.Fatal(err)
	}
	want := []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}, {Key: "b", Value: []byte("")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ParseHeaders([]string{"bad"}); err == nil {
		t.Error("ParseHeaders accepted a header without '='")
	}
}

func TestParseAcks(t *testing.T) {
	tests := []struct {
		in      string
		wantAll bool
		wantErr bool
	}{
		{in: "all", wantAll: true},
		{in: "ALL", wantAll: true},
		{in: "-1", wantAll: true},
		{in: "1"},
		{in: "0"},
		{in: "2", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseAcks(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAcks(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got.All != tt.wantAll {
			t.Errorf("ParseAcks(%q).All = %v, want %v", tt.in, got.All, tt.wantAll)
		}
	}
}

func TestParseCompression(t *testing.T) {
	tests := []struct {
		in      string
		want    kgo.CompressionCodec
		wantErr bool
	}{
		{in: "none", want: kgo.NoCompression()},
		{in: "gzip", want: kgo.GzipCompression()},
		{in: "snappy", want: kgo.SnappyCompression()},
		{in: "LZ4", want: kgo.Lz4Compression()},
		{in: "zstd", want: kgo.ZstdCompression()},
		{in: "brotli", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCompression(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseCompression(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCompression(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseStartOffset(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in       string
		want     kgo.Offset
		wantDesc string
		wantErr  bool
	}{
		{in: "beginning", want: kgo.NewOffset().AtStart(), wantDesc: "beginning"},
		{in: "earliest", want: kgo.NewOffset().AtStart(), wantDesc: "beginning"},
		{in: "end", want: kgo.NewOffset().AtEnd(), wantDesc: "end"},
		{in: "offset:0", want: kgo.NewOffset().At(0), wantDesc: "offset 0"},
		{in: "offset:42", want: kgo.NewOffset().At(42), wantDesc: "offset 42"},
		{in: "timestamp:1714557600000", want: kgo.NewOffset().AfterMilli(ts.UnixMilli()), wantDesc: "timestamp 1714557600000"},
		{in: "timestamp:2024-05-01T10:00:00Z", want: kgo.NewOffset().AfterMilli(ts.UnixMilli()), wantDesc: "timestamp 1714557600000"},
		{in: "timestamp:2024-05-01T12:00:00+02:00", want: kgo.NewOffset().AfterMilli(ts.UnixMilli()), wantDesc: "timestamp 1714557600000"},
		{in: "offset:-1", wantErr: true},
		{in: "offset:x", wantErr: true},
		{in: "timestamp:yesterday", wantErr: true},
		{in: "timestamp:-5", wantErr: true},
		{in: "middle", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseStartOffset(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseStartOffset(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if !reflect.DeepEqual(got.Offset, tt.want) || got.Desc != tt.wantDesc {
			t.Errorf("ParseStartOffset(%q) = %v %q, want %v %q", tt.in, got.Offset, got.Desc, tt.want, tt.wantDesc)
		}
	}
}
