package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		props   map[string]string
		want    ConnectionLimits
		wantErr string
	}{
		{name: "defaults", want: ConnectionLimits{MaxConnections: 2147483647, MaxPerIP: 2147483647, CreationRate: 2147483647,
			PerListener: map[string]int{}, ListenerCreationRate: map[string]int{}, PerIPOverrides: map[string]int{}}},
		{name: "all", props: map[string]string{
			"max.connections": "100", "max.connections.per.ip": "5",
			"max.connections.per.ip.overrides":                     "127.0.0.1:2, localhost:7,::1:3",
			"max.connection.creation.rate":                         "50",
			"listener.name.plaintext.max.connections":              "10",
			"listener.name.plaintext.max.connection.creation.rate": "20",
		}, want: ConnectionLimits{MaxConnections: 100, MaxPerIP: 5, CreationRate: 50,
			PerListener: map[string]int{"PLAINTEXT": 10}, ListenerCreationRate: map[string]int{"PLAINTEXT": 20},
			PerIPOverrides: map[string]int{"127.0.0.1": 2, "localhost": 7, "::1": 3}}},
		{name: "zero per ip with overrides", props: map[string]string{"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "10.0.0.1:4"},
			want: ConnectionLimits{MaxConnections: 2147483647, MaxPerIP: 0, CreationRate: 2147483647,
				PerListener: map[string]int{}, ListenerCreationRate: map[string]int{}, PerIPOverrides: map[string]int{"10.0.0.1": 4}}},
		{name: "zero per ip alone", props: map[string]string{"max.connections.per.ip": "0"}, wantErr: "can be set to zero only if max.connections.per.ip.overrides"},
		{name: "bad override", props: map[string]string{"max.connections.per.ip.overrides": "10.0.0.1"}, wantErr: "not host:N"},
		{name: "negative override", props: map[string]string{"max.connections.per.ip.overrides": "10.0.0.1:-1"}, wantErr: "N >= 0"},
		{name: "negative", props: map[string]string{"max.connections": "-1"}, wantErr: "at least 0"},
		{name: "listener zero", props: map[string]string{"listener.name.plaintext.max.connections": "0"}, wantErr: "at least 1"},
		{name: "window", props: map[string]string{"quota.window.num": "0"}, wantErr: "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadServer(tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ConnectionLimits(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
