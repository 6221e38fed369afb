using System.Buffers.Binary;

namespace CoeffTune.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST (gzipped or not): a big-endian magic 0x0000TTDD (TT = 0x08 for
/// unsigned bytes, DD = number of dimensions), DD big-endian int32 sizes, then the data.
/// </summary>
public static class IdxReader
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    /// <summary>Images as floats in [0, 1] (byte / 255), N x H x W.</summary>
    public static (float[] Pixels, int Count, int Height, int Width) ReadImages(string path)
    {
        var bytes = DataFiles.ReadAllBytes(path);
        var dims = Header(path, bytes, ImagesMagic, "an IDX image file");
        long expected = 16L + (long)dims[0] * dims[1] * dims[2];
        if (bytes.LongLength != expected)
            throw DataFiles.Bad(path, $"{dims[0]} images of {dims[1]}x{dims[2]} need {expected} bytes, the file has {bytes.LongLength}");
        var px = new float[bytes.Length - 16];
        for (int i = 0; i < px.Length; i++) px[i] = bytes[16 + i] / 255f;
        return (px, dims[0], dims[1], dims[2]);
    }

    public static int[] ReadLabels(string path)
    {
        var bytes = DataFiles.ReadAllBytes(path);
        var dims = Header(path, bytes, LabelsMagic, "an IDX label file");
        if (bytes.LongLength != 8L + dims[0])
            throw DataFiles.Bad(path, $"{dims[0]} labels need {8L + dims[0]} bytes, the file has {bytes.LongLength}");
        var labels = new int[dims[0]];
        for (int i = 0; i < labels.Length; i++) labels[i] = bytes[8 + i];
        return labels;
    }

    /// <summary>An images file and its labels file as one single-channel dataset.</summary>
    public static ImageDataset Read(string imagesPath, string labelsPath, IReadOnlyList<string>? classes = null, string name = "idx")
    {
        var (px, n, h, w) = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (labels.Length != n)
            throw new InvalidDataException($"{Path.GetFileName(imagesPath)} has {n} images but {Path.GetFileName(labelsPath)} has {labels.Length} labels");
        int max = labels.Length == 0 ? 0 : labels.Max();
        classes ??= Enumerable.Range(0, max + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (max >= classes.Count)
            throw DataFiles.Bad(labelsPath, $"label {max} but only {classes.Count} class names");
        return new ImageDataset(px, labels, classes, 1, h, w, name);
    }

    private static int[] Header(string path, byte[] bytes, int magic, string what)
    {
        // The magic first: a wrong kind of file is the likelier mistake than a truncated one.
        int ndims = magic & 0xff;
        if (bytes.Length < 4)
            throw DataFiles.Bad(path, $"{bytes.Length} bytes is too short for {what}");
        int m = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (m != magic)
            throw DataFiles.Bad(path, $"magic 0x{m:x8} is not {what} (expected 0x{magic:x8})");
        if (bytes.Length < 4 + 4 * ndims)
            throw DataFiles.Bad(path, $"{bytes.Length} bytes is too short for {what}");
        var dims = new int[ndims];
        for (int d = 0; d < ndims; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (dims[d] < 0 || (d > 0 && dims[d] == 0)) throw DataFiles.Bad(path, $"dimension {d} has size {dims[d]}");
        }
        return dims;
    }
}
