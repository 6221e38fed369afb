using SkiaSharp;

namespace CoeffTune.Data;

/// <summary>
/// A folder with one sub-folder per class holding PNG/JPEG files. Classes are the sub-folder names in
/// ordinal order; files are read in ordinal order too, so the same folder always gives the same dataset.
/// </summary>
public static class ImageFolderReader
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    public static bool LooksLikeImageFolder(string root) =>
        Directory.Exists(root) && Directory.EnumerateDirectories(root).Any(d => ImageFiles(d).Any());

    /// <summary>Every image resized to <paramref name="height"/> x <paramref name="width"/>; <paramref name="channels"/> 1 gives grey (ITU-R 601 luma), 3 RGB.</summary>
    /// <remarks>
    /// A file that does not decode whole (truncated, damaged, not an image) is an error naming it; with
    /// <paramref name="skipBad"/> such files are skipped instead, and counted and named on <paramref name="log"/>.
    /// </remarks>
    public static ImageDataset Read(string root, int height, int width, int channels, string? name = null, bool skipBad = false, TextWriter? log = null)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, got {channels}");
        if (height < 1 || width < 1) throw new ArgumentException($"image size {height}x{width} must be positive");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: folder not found");
        var classDirs = Directory.GetDirectories(root).OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal)
            .Where(d => ImageFiles(d).Any()).ToArray();
        if (classDirs.Length == 0)
            throw new InvalidDataException($"{root}: no class sub-folders with .png/.jpg/.jpeg files");
        var files = new List<(string Path, int Label)>();
        for (int c = 0; c < classDirs.Length; c++)
            files.AddRange(ImageFiles(classDirs[c]).OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).Select(f => (f, c)));

        int size = channels * height * width;
        var decoded = new List<(float[] Pixels, int Label)>(files.Count);
        var skipped = new List<string>();
        foreach (var (file, label) in files)
        {
            try { decoded.Add((Decode(file, Path.GetRelativePath(root, file), height, width, channels), label)); }
            catch (InvalidDataException e) when (skipBad)
            {
                skipped.Add(e.Message);
            }
        }
        if (skipped.Count > 0)
            log?.WriteLine($"warning: skipped {skipped.Count} of {files.Count} image files that do not decode: {string.Join("; ", skipped.Take(5))}{(skipped.Count > 5 ? "; ..." : "")}");
        if (decoded.Count == 0) throw new InvalidDataException($"{root}: none of the {files.Count} image files decodes");
        var pixels = new float[(long)decoded.Count * size];
        for (int i = 0; i < decoded.Count; i++) decoded[i].Pixels.CopyTo(pixels, (long)i * size);
        return new ImageDataset(pixels, decoded.Select(f => f.Label).ToArray(), classDirs.Select(Path.GetFileName).ToArray()!,
            channels, height, width, name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(root)));
    }

    /// <summary>One file decoded whole, resized (bilinear) and converted; a truncated or damaged file is an error naming it.</summary>
    public static float[] Decode(string path, string shownName, int height, int width, int channels)
    {
        using var codec = SKCodec.Create(path)
            ?? throw new InvalidDataException($"{shownName}: not a PNG or JPEG image SkiaSharp can decode");
        var full = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap(full);
        // SKBitmap.Decode accepts a truncated file and fills the missing rows; the codec says so instead.
        var result0 = codec.GetPixels(full, decoded.GetPixels());
        if (result0 != SKCodecResult.Success)
            throw new InvalidDataException($"{shownName}: the image does not decode whole ({result0}); the file is truncated or damaged");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var scaled = new SKBitmap(info);
        if (!decoded.ScalePixels(scaled, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)))
            throw new InvalidDataException($"{shownName}: could not resize {decoded.Width}x{decoded.Height} to {width}x{height}");
        var rgba = scaled.Bytes;
        var result = new float[channels * height * width];
        int plane = height * width;
        for (int p = 0; p < plane; p++)
        {
            float r = rgba[4 * p] / 255f, g = rgba[4 * p + 1] / 255f, b = rgba[4 * p + 2] / 255f;
            if (channels == 1) result[p] = 0.299f * r + 0.587f * g + 0.114f * b;
            else { result[p] = r; result[plane + p] = g; result[2 * plane + p] = b; }
        }
        return result;
    }

    private static IEnumerable<string> ImageFiles(string dir) =>
        Directory.EnumerateFiles(dir).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()));
}
