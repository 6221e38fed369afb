using SkiaSharp;
using static TorchSharp.torch;

namespace CoeffTune.IO;

/// <summary>Generated images as PNG files: one grid of them, or one file each. Grey images stay grey; values in [-1, 1] map to 0..255.</summary>
public static class ImageGrid
{
    /// <summary>Gap between tiles and around the grid, in pixels of the written image.</summary>
    public const int Gap = 2;

    /// <summary>Columns of a grid of <paramref name="count"/> images: the smallest whose square holds them all.</summary>
    public static int Columns(int count) => Math.Max(1, (int)Math.Ceiling(Math.Sqrt(count)));

    /// <summary>
    /// The width and height of the grid <see cref="WriteGrid"/> writes for <paramref name="count"/> images of
    /// <paramref name="side"/> pixels each, enlarged <paramref name="scale"/> times.
    /// </summary>
    public static (int Width, int Height) GridSize(int count, int side, int scale, int? columns = null)
    {
        int cols = columns ?? Columns(count), rows = (count + cols - 1) / cols, tile = side * scale;
        return (cols * tile + (cols + 1) * Gap, rows * tile + (rows + 1) * Gap);
    }

    /// <summary>
    /// Writes <paramref name="images"/> (N, C, H, W), values in [-1, 1], as one PNG grid on a mid-grey background, row by
    /// row, <paramref name="columns"/> to a row (default: <see cref="Columns"/>).
    /// </summary>
    public static void WriteGrid(Tensor images, string path, int scale = 2, int? columns = null)
    {
        if (columns is < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "a grid needs at least one column");
        var pixels = Bytes(images, out int n, out int c, out int h, out int w);
        var (width, height) = GridSize(n, Math.Max(h, w), scale, columns);
        int cols = columns ?? Columns(n);
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        bitmap.Erase(new SKColor(128, 128, 128));
        for (int i = 0; i < n; i++)
        {
            int x0 = Gap + i % cols * (w * scale + Gap), y0 = Gap + i / cols * (h * scale + Gap);
            Draw(bitmap, pixels, i, c, h, w, x0, y0, scale);
        }
        Save(bitmap, path);
    }

    /// <summary>Writes each image as its own PNG, <c>{prefix}{i:000}.png</c> in <paramref name="dir"/>, at its own size times <paramref name="scale"/>; returns the paths.</summary>
    public static IReadOnlyList<string> WriteEach(Tensor images, string dir, string prefix = "image-", int scale = 1)
    {
        var pixels = Bytes(images, out int n, out int c, out int h, out int w);
        Directory.CreateDirectory(dir);
        var paths = new List<string>();
        for (int i = 0; i < n; i++)
        {
            using var bitmap = new SKBitmap(w * scale, h * scale, SKColorType.Rgba8888, SKAlphaType.Opaque);
            Draw(bitmap, pixels, i, c, h, w, 0, 0, scale);
            var path = Path.Combine(dir, $"{prefix}{i:000}.png");
            Save(bitmap, path);
            paths.Add(path);
        }
        return paths;
    }

    private static byte[] Bytes(Tensor images, out int n, out int c, out int h, out int w)
    {
        if (images.dim() != 4 || images.shape[1] is not (1 or 3))
            throw new ArgumentException($"expected images (N, 1 or 3, H, W), got [{string.Join(", ", images.shape)}]");
        (n, c, h, w) = ((int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3]);
        using var scaled = ((images.detach().to(ScalarType.Float32).cpu().clamp(-1, 1) + 1) * 127.5).round().to(ScalarType.Byte).contiguous();
        return scaled.data<byte>().ToArray();
    }

    private static void Draw(SKBitmap bitmap, byte[] pixels, int i, int c, int h, int w, int x0, int y0, int scale)
    {
        int plane = h * w, offset = i * c * plane;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int p = offset + y * w + x;
                var color = c == 1 ? new SKColor(pixels[p], pixels[p], pixels[p]) : new SKColor(pixels[p], pixels[p + plane], pixels[p + 2 * plane]);
                for (int dy = 0; dy < scale; dy++)
                    for (int dx = 0; dx < scale; dx++)
                        bitmap.SetPixel(x0 + x * scale + dx, y0 + y * scale + dy, color);
            }
    }

    private static void Save(SKBitmap bitmap, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, tmp => { using var f = File.Create(tmp); data.SaveTo(f); });
    }
}
