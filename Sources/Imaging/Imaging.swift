// Imaging: decode PNG/JPEG/WebP through the system libraries, encode PNG, Image ⇄ Tensor.
