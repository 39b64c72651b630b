// Package cli holds the logic shared by the samsa client subcommands (topic, produce, consume)
// that does not need a broker: parsing of command-line values (broker lists, k=v pairs, acks,
// compression codecs, start offsets), turning input lines into records, the consume output
// format, the tables printed by the topic commands, and turning client errors into one-line
// messages. The cobra wiring lives in cmd/samsa; everything here is unit-tested without sockets.
package cli
