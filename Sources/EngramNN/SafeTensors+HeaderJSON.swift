import EngramTensor
import Foundation

// MARK: - Header JSON

/// A parsed JSON value; objects keep their members in order, numbers their source text.
indirect enum JSON {
    case object([(key: String, value: JSON)])
    case array([JSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// "an object", "a string", … for error messages.
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number(let text): "the number \(text)"
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}

/// A strict RFC 8259 parser for the header (which is valid UTF-8, checked before).
struct JSONParser {
    struct Failure: Error {
        var message: String
        var offset: Int
    }

    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// One value, surrounded only by whitespace.
    mutating func document() throws -> JSON {
        let result = try value(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected \(current) after the top-level value") }
        return result
    }

    private func fail(_ message: String) -> Failure { Failure(message: message, offset: index) }

    private var current: String {
        guard index < bytes.count else { return "end of header" }
        let byte = bytes[index]
        return (0x21 ..< 0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// Consumes `byte` (after whitespace) if it is next.
    private mutating func take(_ byte: Unicode.Scalar) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(byte.value) else { return false }
        index += 1
        return true
    }

    private mutating func value(depth: Int) throws -> JSON {
        guard depth < 64 else { throw fail("nesting deeper than 64 levels") }
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of header") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [(key: String, value: JSON)] = []
            if take("}") { return .object([]) }
            repeat {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw fail("expected a string key, found \(current)")
                }
                let key = try string()
                guard take(":") else { throw fail("expected ':' after key, found \(current)") }
                members.append((key, try value(depth: depth + 1)))
            } while try separator(closing: "}")
            return .object(members)
        case UInt8(ascii: "["):
            index += 1
            var elements: [JSON] = []
            if take("]") { return .array([]) }
            repeat { elements.append(try value(depth: depth + 1)) } while try separator(closing: "]")
            return .array(elements)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected \(current)")
        }
    }

    /// After an element: `true` on ',', `false` on the closing bracket.
    private mutating func separator(closing: Unicode.Scalar) throws -> Bool {
        if take(",") { return true }
        if take(closing) { return false }
        throw fail("expected ',' or '\(closing)', found \(current)")
    }

    private mutating func literal(_ word: String) throws {
        let end = index + word.utf8.count
        guard end <= bytes.count, bytes[index ..< end].elementsEqual(word.utf8) else { throw fail("unexpected \(current)") }
        index = end
    }

    private func isDigit(_ at: Int) -> Bool { at < bytes.count && (0x30 ... 0x39).contains(bytes[at]) }

    private mutating func number() throws -> String {
        let start = index
        func digits(_ parser: inout JSONParser) throws {
            guard parser.isDigit(parser.index) else { throw parser.fail("malformed number") }
            while parser.isDigit(parser.index) { parser.index += 1 }
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "0") { index += 1 } else { try digits(&self) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") { index += 1; try digits(&self) }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            try digits(&self)
        }
        return String(decoding: bytes[start ..< index], as: UTF8.self)
    }

    private mutating func string() throws -> String {
        index += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case 0 ..< 0x20: index -= 1; throw fail("unescaped control character in a string")
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unterminated string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800 ..< 0xDC00).contains(code) {
                        guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else { throw fail("unpaired surrogate in a string") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("unpaired surrogate in a string") }
                        code = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate in a string") }
                    UTF8.encode(scalar) { out.append($0) }
                default: index -= 1; throw fail("invalid escape \(current) in a string")
                }
            default: out.append(byte)
            }
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count,
              let code = UInt32(String(decoding: bytes[index ..< index + 4], as: UTF8.self), radix: 16),
              bytes[index ..< index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { throw fail("malformed \\u escape") }
        index += 4
        return code
    }
}
