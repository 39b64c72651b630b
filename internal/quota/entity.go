package quota

// Name is one component of a quota entity: a named user, client id or ip, or the default
// one (Kafka's null entity name, <default> in kafka-configs). Set is false when the entity
// does not have this component at all.
type Name struct {
	Set     bool
	Default bool
	Name    string
}

// Named returns a set, named component.
func Named(n string) Name { return Name{Set: true, Name: n} }

// DefaultName returns the component that stands for the default.
func DefaultName() Name { return Name{Set: true, Default: true} }

// Entity is what a quota is configured for, as Kafka's ClientQuotaEntity: a user, a client
// id, both, or an ip, each named or the default. It is comparable (a map key).
type Entity struct {
	User     Name
	ClientID Name
	IP       Name
}

// The quota keys Kafka accepts (kafka-configs --add-config KEY=VALUE).
const (
	ProducerByteRate       = "producer_byte_rate"
	ConsumerByteRate       = "consumer_byte_rate"
	RequestPercentage      = "request_percentage"
	ControllerMutationRate = "controller_mutation_rate"
	ConnectionCreationRate = "connection_creation_rate" // ip entities only
)

// Values are one entity's configured quotas by key.
type Values map[string]float64

// Table is every configured quota. A Table is never changed once published: a change to the
// quotas publishes a new one, so a cache may be keyed by the *Table.
type Table struct {
	Quotas map[Entity]Values
}

// Source gives the quotas currently configured (the metadata image's); never nil.
type Source interface {
	ClientQuotas() *Table
}
