using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Data;

/// <summary>
/// Images in memory: N x C x H x W float32 values in [0, 1], stored flat in one array (row-major, as a
/// tensor would hold them), with an int label per image. Immutable: every operation returns a new dataset.
/// </summary>
public sealed class ImageDataset : ILabeledDataset
{
    private readonly float[] pixels;
    private readonly int[] labels;

    public string Name { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> Classes { get; }
    public IReadOnlyList<int> Labels => labels;
    public int Count => labels.Length;
    /// <summary>Floats per image: C * H * W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Takes ownership of <paramref name="pixels"/> (N*C*H*W floats) and <paramref name="labels"/>.</summary>
    public ImageDataset(float[] pixels, int[] labels, IReadOnlyList<string> classes, int channels, int height, int width, string name = "images")
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classes);
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentException($"{name}: image shape {channels}x{height}x{width} must be positive");
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.LongLength != expected)
            throw new ArgumentException($"{name}: {pixels.LongLength} floats given for {labels.Length} images of {channels}x{height}x{width} (expected {expected})");
        DatasetChecks.Labels(labels, classes.Count, name);
        this.pixels = pixels;
        this.labels = labels;
        Classes = classes.ToArray();
        Channels = channels;
        Height = height;
        Width = width;
        Name = name;
    }

    /// <summary>From a (N, C, H, W) float tensor (copied to the CPU).</summary>
    public static ImageDataset FromTensor(Tensor images, int[] labels, IReadOnlyList<string> classes, string name = "images")
    {
        if (images.dim() != 4) throw new ArgumentException($"{name}: expected a (N, C, H, W) tensor, got shape [{string.Join(", ", images.shape)}]");
        using var cpu = images.to(ScalarType.Float32).cpu().contiguous();
        var data = cpu.data<float>().ToArray();
        return new ImageDataset(data, labels, classes, (int)images.shape[1], (int)images.shape[2], (int)images.shape[3], name);
    }

    /// <summary>The C*H*W floats of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"{Name}: image {index} of {Count}");
        return pixels.AsSpan(index * ImageSize, ImageSize);
    }

    /// <summary>All pixels, N*C*H*W floats, read-only.</summary>
    public ReadOnlySpan<float> Pixels => pixels;

    public ImageDataset Subset(int[] indices, string? name = null)
    {
        DatasetChecks.Indices(indices, Count, Name);
        int size = ImageSize;
        var px = new float[(long)indices.Length * size];
        var lb = new int[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            Array.Copy(pixels, (long)indices[k] * size, px, (long)k * size, size);
            lb[k] = labels[indices[k]];
        }
        return new ImageDataset(px, lb, Classes, Channels, Height, Width, name ?? Name);
    }

    /// <summary>Same images, labels mapped through <paramref name="map"/> (old class -> new class).</summary>
    public ImageDataset Relabel(int[] map, IReadOnlyList<string> classes, string? name = null)
    {
        if (map.Length != Classes.Count) throw new ArgumentException($"{Name}: relabel map has {map.Length} entries for {Classes.Count} classes");
        return new ImageDataset(pixels, labels.Select(l => map[l]).ToArray(), classes, Channels, Height, Width, name ?? Name);
    }

    /// <summary>Same images with new labels (e.g. a self-supervised target).</summary>
    public ImageDataset WithLabels(int[] newLabels, IReadOnlyList<string> classes, string? name = null)
    {
        if (newLabels.Length != Count) throw new ArgumentException($"{Name}: {newLabels.Length} labels for {Count} images");
        return new ImageDataset(pixels, newLabels, classes, Channels, Height, Width, name ?? Name);
    }

    /// <summary>Same labels, pixels replaced (e.g. transformed images of the same shape or a new one).</summary>
    public ImageDataset WithPixels(float[] newPixels, int channels, int height, int width, string? name = null) =>
        new(newPixels, labels, Classes, channels, height, width, name ?? Name);

    public IEnumerable<int[]> Batches(int batchSize, int? shuffleSeed = null, bool dropLast = false) =>
        IndexBatches.Make(Count, batchSize, shuffleSeed, dropLast);

    /// <summary>Inputs (B, C, H, W) float32 and Labels (B) int64, both on <paramref name="device"/> (CPU when null).</summary>
    public Batch MakeBatch(int[] indices, Device? device = null)
    {
        DatasetChecks.Indices(indices, Count, Name);
        int size = ImageSize;
        var px = new float[(long)indices.Length * size];
        var lb = new long[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            Array.Copy(pixels, (long)indices[k] * size, px, (long)k * size, size);
            lb[k] = labels[indices[k]];
        }
        var inputs = tensor(px, new long[] { indices.Length, Channels, Height, Width });
        var targets = tensor(lb, new long[] { indices.Length });
        if (device is null || device.type == DeviceType.CPU) return new Batch(inputs, Labels: targets);
        var batch = new Batch(inputs.to(device), Labels: targets.to(device));
        inputs.Dispose();
        targets.Dispose();
        return batch;
    }

    public override string ToString() => $"{Name}: {Count} images {Channels}x{Height}x{Width}, {Classes.Count} classes";
}
