using CoeffTune.Data;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>A ViT's preprocessing: images decoded (SkiaSharp) to its channels and size, pixels in [0, 1].</summary>
public sealed class VitInputs(VitConfig config) : IModelInputs
{
    public TaskKind Kind => TaskKind.Image;

    public void Check(TaskData task)
    {
        if (task.Kind != TaskKind.Image) throw new ArgumentException($"task {task.Name}: a text task; an image model reads images");
        CheckShape(task.Name, task.Channels, task.Height, task.Width);
    }

    public IBatchSource Source(ILabeledDataset data)
    {
        if (data is not ImageDataset i) throw new ArgumentException($"task {data.Name}: a text task; an image model reads images");
        CheckShape(i.Name, i.Channels, i.Height, i.Width);
        return new ImageBatchSource(i);
    }

    public Batch Encode(IReadOnlyList<string> inputs, Device device)
    {
        var c = config;
        int size = c.Channels * c.ImageSize * c.ImageSize;
        var pixels = new float[inputs.Count * size];
        for (int i = 0; i < inputs.Count; i++)
        {
            if (!File.Exists(inputs[i])) throw new FileNotFoundException($"{inputs[i]}: image file not found (an image model takes PNG/JPEG paths)");
            ImageFolderReader.Decode(inputs[i], inputs[i], c.ImageSize, c.ImageSize, c.Channels).CopyTo(pixels, i * size);
        }
        return new Batch(tensor(pixels, new long[] { inputs.Count, c.Channels, c.ImageSize, c.ImageSize }).to(device));
    }

    public Batch Probe(Device device)
    {
        var g = new TorchSharp.torch.Generator(1234);
        return new Batch(rand(new long[] { 4, config.Channels, config.ImageSize, config.ImageSize }, generator: g).to(device));
    }

    private void CheckShape(string task, int channels, int height, int width)
    {
        var c = config;
        if (c.Channels != channels || c.ImageSize != height || c.ImageSize != width)
            throw new ArgumentException($"task {task}: images are {channels}x{height}x{width}, the model takes {c.Channels}x{c.ImageSize}x{c.ImageSize}");
    }
}
