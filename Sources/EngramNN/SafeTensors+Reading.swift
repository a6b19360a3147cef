import Crypto
import EngramTensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Reading

extension SafeTensors {
    /// A validated header entry.
    struct Spec {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int

        init(name: String, json: JSON, dataSize: Int, failure: (String) -> SafeTensorsError) throws {
            func fail(_ defect: String) -> SafeTensorsError { failure("tensor '\(name)' \(defect)") }
            guard case .object(let fields) = json else { throw fail("has an entry that is \(json.kind), not an object") }
            func field(_ key: String) throws -> JSON {
                guard let value = fields.last(where: { $0.key == key })?.value else { throw fail("has no \(key)") }
                return value
            }
            func integer(_ value: JSON, _ what: String) throws -> Int {
                guard case .number(let text) = value else { throw fail("has \(what) that is \(value.kind), not an integer") }
                guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
                    throw fail("has \(what) \(text) that is not an integer")
                }
                guard let number = Int(text) else { throw fail("has \(what) \(text) that is too large") }
                guard number >= 0 else { throw fail("has \(what) \(text) that is negative") }
                return number
            }
            self.name = name

            guard case .string(let dtypeName) = try field("dtype") else { throw fail("has a dtype that is not a string") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw fail("has unknown dtype '\(dtypeName)'") }
            self.dtype = dtype

            let shapeJSON = try field("shape")
            guard case .array(let extents) = shapeJSON else { throw fail("has a shape that is \(shapeJSON.kind), not an array") }
            shape = try extents.map { try integer($0, "a shape extent") }
            // The product of the non-zero extents must fit too: code that computes strides from the
            // shape of an empty tensor (e.g. [0, 2^40, 2^40]) must not overflow either.
            var nonZeroProduct = 1
            for extent in shape where extent != 0 {
                let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: extent)
                guard !overflow else { throw fail("has shape \(shape) with too many elements") }
                nonZeroProduct = product
            }
            self.count = shape.contains(0) ? 0 : nonZeroProduct

            let offsetsJSON = try field("data_offsets")
            guard case .array(let offsets) = offsetsJSON, offsets.count == 2 else {
                throw fail("has data_offsets that are not an array of two integers")
            }
            begin = try integer(offsets[0], "a data_offsets begin")
            end = try integer(offsets[1], "a data_offsets end")
            guard begin <= end else { throw fail("has data_offsets [\(begin), \(end)] out of order (end before begin)") }
            guard end <= dataSize else {
                throw fail("has data_offsets [\(begin), \(end)] beyond the data buffer of \(dataSize) bytes")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !overflow, bytes == end - begin else {
                throw fail("of dtype \(dtype.rawValue) and shape \(shape) needs \(count) × \(dtype.byteWidth) bytes, "
                    + "but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
        }
    }

    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// `count` values of `dtype` stored little-endian in `data`, as Float32.
    static func floats(_ data: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count: Int) -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                UnsafeMutableRawBufferPointer(out).copyMemory(from: data)
                #if _endian(big)
                for i in 0 ..< count { out[i] = Float(bitPattern: out[i].bitPattern.byteSwapped) }
                #endif
            case .f64: convert(data, out, UInt64.self) { Float(Double(bitPattern: $0)) }
            case .f16: convert(data, out, UInt16.self, halfToFloat)
            case .bf16: convert(data, out, UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
            case .f8e5m2: convert(data, out, UInt8.self) { halfToFloat(UInt16($0) << 8) }
            case .f8e4m3: convert(data, out, UInt8.self, e4m3ToFloat)
            case .i64: convert(data, out, UInt64.self) { Float(Int64(bitPattern: $0)) }
            case .i32: convert(data, out, UInt32.self) { Float(Int32(bitPattern: $0)) }
            case .i16: convert(data, out, UInt16.self) { Float(Int16(bitPattern: $0)) }
            case .i8: convert(data, out, UInt8.self) { Float(Int8(bitPattern: $0)) }
            case .u64: convert(data, out, UInt64.self) { Float($0) }
            case .u32: convert(data, out, UInt32.self) { Float($0) }
            case .u16: convert(data, out, UInt16.self) { Float($0) }
            case .u8: convert(data, out, UInt8.self) { Float($0) }
            case .bool: convert(data, out, UInt8.self) { $0 == 0 ? 0 : 1 }
            }
            initialized = count
        }
    }

    /// Fills `out` with `transform` of each little-endian `T` in `data` (which may be unaligned).
    @inline(__always)
    static func convert<T: FixedWidthInteger>(_ data: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>,
                                              _: T.Type, _ transform: (T) -> Float) {
        for i in 0 ..< out.count {
            out[i] = transform(T(littleEndian: data.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)))
        }
    }

    /// IEEE binary16 bits → Float (exact).
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F, mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0x1F: return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)          // inf, NaN
        case 0: return sign == 0 ? Float(mantissa) * 0x1p-24 : -Float(mantissa) * 0x1p-24      // ±0, subnormal
        default: return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// OCP FP8 E4M3FN bits → Float (exact): bias 7, no infinities, S.1111.111 is NaN.
    static func e4m3ToFloat(_ bits: UInt8) -> Float {
        let exponent = Int(bits >> 3) & 0xF, mantissa = Float(bits & 7)
        let magnitude: Float = exponent == 0xF && mantissa == 7 ? .nan
            : exponent == 0 ? mantissa * 0x1p-9 : (8 + mantissa) * Float(sign: .plus, exponent: exponent - 10, significand: 1)
        return bits & 0x80 == 0 ? magnitude : -magnitude
    }
}
