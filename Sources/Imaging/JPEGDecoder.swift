// JPEG through the system libjpeg-turbo, set up as Pillow sets it up (default islow IDCT and fancy
// upsampling; CMYK read with Adobe's inverted polarity, as Pillow assumes for every CMYK JPEG).
//
// libjpeg reports a fatal error by calling `error_exit`, which must not return; C code longjmps out of
// it, which Swift cannot do safely. So the decode runs on a thread of its own, and `error_exit` ends that
// thread with pthread_exit: the libjpeg frames are abandoned exactly as a longjmp would abandon them,
// the caller (joined on the thread) gets the message, and `jpeg_destroy_decompress` frees everything
// libjpeg allocated. The thread's Swift code holds only raw pointers into `JPEGJob`, memory that the
// caller owns, so abandoning its frames leaks nothing.
import CImageCodecs
import Torch
#if canImport(Glibc)
import Glibc
#endif

private struct JPEGJob {
    enum Stage { case running, done, failed, truncated, tooLarge, unsupported }
    var input: UnsafePointer<UInt8>
    var inputCount: Int
    var maxPixels: Int
    var cinfo: UnsafeMutablePointer<jpeg_decompress_struct>
    /// libjpeg's formatted message for `failed` / `truncated`.
    var message: UnsafeMutablePointer<CChar>
    var stage = Stage.running
    var width = 0, height = 0, components = 0
    /// malloc'ed by the thread once the size is known, freed by the caller.
    var output: UnsafeMutablePointer<UInt8>?
}

enum JPEGDecoder {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int) throws -> Image {
        guard let input = bytes.baseAddress else { throw ImageError(file: file, reason: .empty) }
        let messageLength = Int(JMSG_LENGTH_MAX)
        let cinfo = UnsafeMutablePointer<jpeg_decompress_struct>.allocate(capacity: 1)
        cinfo.initialize(to: jpeg_decompress_struct())  // zeroed: destroying it is safe even if creation failed
        let errorManager = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        errorManager.initialize(to: jpeg_error_mgr())
        let message = UnsafeMutablePointer<CChar>.allocate(capacity: messageLength)
        message.initialize(repeating: 0, count: messageLength)
        let job = UnsafeMutablePointer<JPEGJob>.allocate(capacity: 1)
        job.initialize(to: JPEGJob(input: input, inputCount: bytes.count, maxPixels: maxPixels, cinfo: cinfo, message: message))
        defer {
            jpeg_destroy_decompress(cinfo)
            free(job.pointee.output)
            job.deinitialize(count: 1)
            job.deallocate()
            message.deallocate()
            errorManager.deallocate()
            cinfo.deallocate()
        }

        cinfo.pointee.err = jpeg_std_error(errorManager)
        errorManager.pointee.error_exit = { cinfo in
            if let cinfo, let job = cinfo.pointee.client_data?.assumingMemoryBound(to: JPEGJob.self) {
                cinfo.pointee.err.pointee.format_message?(cinfo, job.pointee.message)
                job.pointee.stage = .failed
            }
            pthread_exit(nil)
        }
        errorManager.pointee.emit_message = { cinfo, level in
            // Warnings (level −1) about corrupt entropy data are recovered from, as in Pillow; running
            // out of data is not: libjpeg would pad the image with grey and invent an EOI, Pillow calls
            // the file truncated (even when only the EOI marker is missing).
            guard level < 0, let cinfo, let job = cinfo.pointee.client_data?.assumingMemoryBound(to: JPEGJob.self),
                  UInt32(bitPattern: cinfo.pointee.err.pointee.msg_code) == JWRN_JPEG_EOF.rawValue else { return }
            cinfo.pointee.err.pointee.format_message?(cinfo, job.pointee.message)
            job.pointee.stage = .truncated
            pthread_exit(nil)
        }
        errorManager.pointee.output_message = { _ in }
        cinfo.pointee.client_data = UnsafeMutableRawPointer(job)

        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            if let raw { runJob(raw.assumingMemoryBound(to: JPEGJob.self)) }
            return nil
        }, UnsafeMutableRawPointer(job))
        guard started == 0 else { throw ImageError(file: file, reason: .io("cannot start a JPEG decode thread (error \(started))")) }
        pthread_join(thread, nil)

        let j = job.pointee
        switch j.stage {
        case .done:
            guard let output = j.output else { throw ImageError(file: file, reason: .corrupt("libjpeg produced no pixels")) }
            let pixels = [UInt8](UnsafeBufferPointer(start: output, count: j.width * j.height * j.components))
            let image = Image(unchecked: j.width, j.height, j.components, pixels)
            return j.components == 4 ? try adobeCMYKToRGB(image) : image
        case .tooLarge:
            throw ImageError(file: file, reason: .tooLarge(width: j.width, height: j.height, limit: maxPixels))
        case .unsupported:
            throw ImageError(file: file, reason: .corrupt("JPEG with \(cinfo.pointee.num_components) components"))
        case .truncated:
            throw ImageError(file: file, reason: .truncated("libjpeg: \(String(cString: message))"))
        case .failed, .running:
            let text = message.pointee == 0 ? "libjpeg stopped" : String(cString: message)
            throw ImageError(file: file, reason: .corrupt("libjpeg: \(text)"))
        }
    }

    /// Pillow's CMYK → RGB for JPEG: it reads CMYK as "CMYK;I" (c = 255 − stored) and converts with
    /// r = round((255 − c)(255 − k) / 255), i.e. r = round(stored_c · stored_k / 255) here.
    static func adobeCMYKToRGB(_ cmyk: Image) throws -> Image {
        let t = try cmyk.hwcTensor().to(.float64)
        let cmy = try t.narrow(dim: 2, start: 0, length: 3), k = try t.narrow(dim: 2, start: 3, length: 1)
        let product = try cmy * k
        return try Image(hwc: try Image.divide255(product).to(.uint8))
    }

    /// The Exif payload (from the TIFF header on) of the APP1 "Exif" segments before the first scan;
    /// several segments are concatenated, as Pillow does.
    static func exifPayload(_ b: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var offset = 2  // after SOI
        var exif: [UInt8]?
        let prefix: [UInt8] = Array("Exif\0\0".utf8)
        while b.count - offset >= 4 {
            guard b[offset] == 0xFF else { break }
            let marker = b[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }  // start of scan / end of image
            let length = Int(b[offset + 2]) << 8 | Int(b[offset + 3])
            guard length >= 2, b.count - offset - 2 >= length else { break }
            let segment = b[(offset + 4)..<(offset + 2 + length)]
            if marker == 0xE1, segment.starts(with: prefix) {
                exif = (exif ?? []) + segment.dropFirst(prefix.count)
            }
            offset += 2 + length
        }
        return exif
    }
}

/// The decode thread's whole job. A libjpeg error exits the thread from inside any call here.
private func runJob(_ job: UnsafeMutablePointer<JPEGJob>) {
    let cinfo = job.pointee.cinfo
    jpeg_CreateDecompress(cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_decompress_struct>.size)
    jpeg_mem_src(cinfo, job.pointee.input, UInt(job.pointee.inputCount))
    _ = jpeg_read_header(cinfo, 1)
    let width = Int(cinfo.pointee.image_width), height = Int(cinfo.pointee.image_height)
    job.pointee.width = width
    job.pointee.height = height
    // The size check happens on the header, before libjpeg allocates anything for the image.
    let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
    guard !overflow, pixels <= job.pointee.maxPixels else {
        job.pointee.stage = .tooLarge
        return
    }
    switch cinfo.pointee.num_components {
    case 1: cinfo.pointee.out_color_space = JCS_GRAYSCALE
    case 3: cinfo.pointee.out_color_space = JCS_RGB
    case 4: cinfo.pointee.out_color_space = JCS_CMYK  // libjpeg turns YCCK into CMYK itself
    default:
        job.pointee.stage = .unsupported
        return
    }
    _ = jpeg_start_decompress(cinfo)
    let components = Int(cinfo.pointee.output_components)
    let rowBytes = Int(cinfo.pointee.output_width) * components
    let rows = Int(cinfo.pointee.output_height)
    guard let buffer = malloc(max(1, rowBytes * rows)) else {
        strcpy(job.pointee.message, "out of memory for the pixels")
        job.pointee.stage = .failed
        return
    }
    let output = buffer.assumingMemoryBound(to: UInt8.self)
    job.pointee.output = output
    job.pointee.components = components
    job.pointee.width = Int(cinfo.pointee.output_width)
    job.pointee.height = rows
    while cinfo.pointee.output_scanline < cinfo.pointee.output_height {
        var row: JSAMPROW? = output + Int(cinfo.pointee.output_scanline) * rowBytes
        // A memory source never suspends, so 0 rows would mean libjpeg gave up without saying why.
        guard jpeg_read_scanlines(cinfo, &row, 1) == 1 else {
            job.pointee.stage = .truncated
            return
        }
    }
    _ = jpeg_finish_decompress(cinfo)
    job.pointee.stage = .done
}
