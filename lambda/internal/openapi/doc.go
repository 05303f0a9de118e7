// Package openapi checks JSON documents against the schemas of an OpenAPI
// 3.1 document. It implements the subset of JSON Schema that Lambda's API
// document uses — type, properties, required, additionalProperties, items,
// enum, const, $ref, allOf, anyOf, oneOf, minLength, maxLength, pattern,
// minimum, maximum, minItems, maxItems and the date-time format — and ignores
// annotations. It exists for contract tests.
package openapi
