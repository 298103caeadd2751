"""The recommend service (docs/recommend.md).

Pure model code, importable without storage or gRPC (the offline evaluation uses it):
`cooccurrence` (CoOccurrence: add_basket, similar, recommend), `content` (ContentIndex),
`popularity` (PopularityCounter, top_from_buckets, newest), `personal` (fit -> PersonalModel:
recommend with history fold-in, to_bytes/from_bytes) and `mix` (mix of strategy candidates
under a MixSpec: filters, rules, diversity, fallback, pins).
"""
