//! Kafka implementation (rdkafka). Filled in by the Kafka work.
