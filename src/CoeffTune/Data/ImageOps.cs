namespace CoeffTune.Data;

/// <summary>Pixel operations on C x H x W float images stored flat.</summary>
public static class ImageOps
{
    /// <summary>
    /// Bilinear resize with half-pixel centres (PyTorch's interpolate with align_corners=false), so an
    /// upsampled image keeps its content centred.
    /// </summary>
    public static float[] ResizeBilinear(ReadOnlySpan<float> src, int channels, int height, int width, int newHeight, int newWidth)
    {
        if (src.Length != channels * height * width) throw new ArgumentException($"{src.Length} floats is not {channels}x{height}x{width}");
        if (newHeight < 1 || newWidth < 1) throw new ArgumentException($"target size {newHeight}x{newWidth} must be positive");
        var dst = new float[channels * newHeight * newWidth];
        float sy = (float)height / newHeight, sx = (float)width / newWidth;
        for (int y = 0; y < newHeight; y++)
        {
            float fy = Math.Clamp((y + 0.5f) * sy - 0.5f, 0, height - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, height - 1);
            float wy = fy - y0;
            for (int x = 0; x < newWidth; x++)
            {
                float fx = Math.Clamp((x + 0.5f) * sx - 0.5f, 0, width - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, width - 1);
                float wx = fx - x0;
                for (int c = 0; c < channels; c++)
                {
                    int o = c * height * width;
                    float top = src[o + y0 * width + x0] * (1 - wx) + src[o + y0 * width + x1] * wx;
                    float bottom = src[o + y1 * width + x0] * (1 - wx) + src[o + y1 * width + x1] * wx;
                    dst[c * newHeight * newWidth + y * newWidth + x] = top * (1 - wy) + bottom * wy;
                }
            }
        }
        return dst;
    }

    /// <summary>Rotates a square image by <paramref name="quarterTurns"/> x 90 degrees counter-clockwise (exact, no interpolation).</summary>
    public static float[] Rotate90(ReadOnlySpan<float> src, int channels, int size, int quarterTurns)
    {
        if (src.Length != channels * size * size) throw new ArgumentException($"{src.Length} floats is not {channels}x{size}x{size}");
        int k = ((quarterTurns % 4) + 4) % 4;
        var dst = new float[src.Length];
        int n = size - 1;
        for (int c = 0; c < channels; c++)
        {
            int o = c * size * size;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    // Destination (y, x) reads the source pixel that a counter-clockwise turn brings there.
                    (int sy, int sx) = k switch
                    {
                        0 => (y, x),
                        1 => (x, n - y),
                        2 => (n - y, n - x),
                        _ => (n - x, y),
                    };
                    dst[o + y * size + x] = src[o + sy * size + sx];
                }
        }
        return dst;
    }
}
