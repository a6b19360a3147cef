import EngramTensor
import EngramData
import Testing

@Suite struct ImageDatasetPaddingTests {
    @Test("padding puts every image in the middle of a zero border and keeps the labels")
    func paddingSurroundsImagesWithZeros() throws {
        let data = try ImageDataset(name: "tiny", channels: 1, height: 2, width: 3, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                                    labels: [0, 1], classCount: 2)
        let padded = try data.padded(by: 1)
        #expect(padded.height == 4 && padded.width == 5 && padded.count == 2 && padded.labels == [0, 1])
        #expect(padded.image(at: 0) == [0, 0, 0, 0, 0,
                                         0, 1, 2, 3, 0,
                                         0, 4, 5, 6, 0,
                                         0, 0, 0, 0, 0])
        #expect(padded.image(at: 1)[6...8] == [7, 8, 9])
        #expect(try data.padded(by: 0) == data)
        #expect(throws: DataError.self) { try data.padded(by: -1) }
    }
}
