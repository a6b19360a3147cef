import EngramTensor
import EngramData
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 (an ephemeral port), for download tests. Each connection
/// is answered on its own thread and closed.
final class LoopbackServer: @unchecked Sendable {
    enum Reply {
        /// 200 with the whole body.
        case body([UInt8])
        /// 200 declaring `declaredLength` bytes, but only `body` is sent before the connection closes.
        case truncated(body: [UInt8], declaredLength: Int)
        /// An error status with a short body.
        case status(Int)
    }

    let port: UInt16
    private let listener: Int32
    private let routes: [String: Reply]
    private let lock = NSLock()
    private var requested: [String] = []

    /// The paths requested so far.
    var requests: [String] { lock.lock(); defer { lock.unlock() }; return requested }

    init(routes: [String: Reply]) throws {
        self.routes = routes
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw TestFailure("bind/listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let thread = Thread { [self] in handle(client) }
            thread.start()
        }
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.suffix(4).elementsEqual([13, 10, 13, 10]) {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first ?? ""
        let parts = line.split(separator: " ")
        let path = parts.count > 1 ? String(parts[1]) : "/"
        lock.lock(); requested.append(path); lock.unlock()
        switch routes[path] ?? .status(404) {
        case .body(let body):
            send(client, header(200, length: body.count) + body)
        case .truncated(let body, let declared):
            send(client, header(200, length: declared) + body)
            usleep(50_000)
        case .status(let code):
            let body = Array("status \(code)\n".utf8)
            send(client, header(code, length: body.count) + body)
        }
    }

    private func header(_ code: Int, length: Int) -> [UInt8] {
        let reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Error"
        return Array("HTTP/1.1 \(code) \(reason)\r\nContent-Length: \(length)\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n".utf8)
    }

    private func send(_ client: Int32, _ bytes: [UInt8]) {
        var sent = 0
        bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = Glibc.send(client, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }
}
