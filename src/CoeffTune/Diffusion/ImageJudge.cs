using System.Text.Json;
using System.Text.RegularExpressions;
using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Training;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>
/// Settings of the judge: the classifier that scores generated images. It is <c>vit-fmnist</c> fine-tuned in full on
/// Fashion-MNIST and MNIST images of every class (held-out concepts included: the judge is a measuring instrument,
/// not the model under test), each with one of the four attributes applied uniformly at random, to name both the
/// class (20: ten garments, ten digits) and the attribute (4) through one 80-way head over (class, attribute) pairs.
/// </summary>
public sealed record JudgeOptions
{
    /// <summary>Training images drawn from each source (Fashion-MNIST, MNIST), a seeded sample; MNIST's pool has 8,000, and 500 more per source are kept for validation.</summary>
    public int ImagesPerSource { get; init; } = DefaultImagesPerSource;
    public const int DefaultImagesPerSource = 7000;
    public int Epochs { get; init; } = DefaultEpochs;
    public const int DefaultEpochs = 6;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Test images drawn from each source's test split.</summary>
    public int TestImagesPerSource { get; init; } = 2000;
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>The backbone the judge starts from.</summary>
    public PretrainOptions Backbone { get; init; } = new();

    /// <summary>"judge-fmnist" for the default budget, "judge-fmnist-{images}x{epochs}" otherwise.</summary>
    public string CacheName => ImagesPerSource == DefaultImagesPerSource && Epochs == DefaultEpochs && Backbone.CacheName == "vit-fmnist"
        ? ImageJudge.CacheName : $"{ImageJudge.CacheName}-{ImagesPerSource}x{Epochs}-{Backbone.CacheName}";

    public JudgeOptions Validate()
    {
        if (ImagesPerSource < 20) throw new ArgumentOutOfRangeException(nameof(ImagesPerSource), ImagesPerSource, "the judge needs at least 20 images per source");
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be positive");
        if (TestImagesPerSource < 1) throw new ArgumentOutOfRangeException(nameof(TestImagesPerSource), TestImagesPerSource, "test images must be positive");
        return this;
    }
}

/// <summary>How well the judge names held-out real images: its class and attribute accuracy on the test splits.</summary>
public sealed record JudgeInfo(double ClassAccuracy, double AttributeAccuracy, int TrainImages, int TestImages, double Seconds);

/// <summary>
/// Names the class and the attribute of an image (values in [-1, 1], as the diffusion model draws them). Trained once
/// from <c>vit-fmnist</c> and cached (<see cref="JudgeOptions"/>); the concept bench and the sample-quality report
/// use it to check that an image shows what its prompt asked for.
/// </summary>
public sealed class ImageJudge : IDisposable
{
    public const string CacheName = "judge-fmnist";
    public const string WeightsFile = "model.safetensors";
    public const string InfoFile = "judge.json";
    public const int CodeVersion = 2;
    public const int ValidationImagesPerSource = 500;

    /// <summary>The judge's classes: Fashion-MNIST's ten garments (0-9), then the ten digits (10-19).</summary>
    public static readonly IReadOnlyList<string> ClassNames = [.. CaptionedCorpus.FashionNouns, .. CaptionedCorpus.DigitNouns];
    public const int DigitOffset = 10;
    public static readonly int AttributeCount = Enum.GetValues<ImageAttribute>().Length;

    private readonly VisionTransformer model;
    public JudgeInfo Info { get; }

    private ImageJudge(VisionTransformer model, JudgeInfo info)
    {
        this.model = model;
        Info = info;
        model.eval();
    }

    /// <summary>The judge <paramref name="o"/> describes: read from the cache, or trained now (a few minutes) and cached.</summary>
    public static ImageJudge Ensure(JudgeOptions o, AssetCache? cache = null, TextWriter? log = null, ITrainingObserver? observer = null)
    {
        o.Validate();
        cache ??= AssetCache.Default;
        log ??= TextWriter.Null;
        var dir = cache.PathFor(o.CacheName);
        var infoPath = Path.Combine(dir, InfoFile);
        var backbone = VitPretraining.Ensure(o.Backbone, cache, log);
        if (ReadInfo(infoPath) is { } cached && File.Exists(Path.Combine(dir, WeightsFile)))
            return new ImageJudge(LoadWeights(backbone, Path.Combine(dir, WeightsFile)), cached);

        using var runFolder = RunFolder.Acquire(Path.Combine(dir, "run"), log);
        if (ReadInfo(infoPath) is { } done && File.Exists(Path.Combine(dir, WeightsFile)))
            return new ImageJudge(LoadWeights(backbone, Path.Combine(dir, WeightsFile)), done);
        log.WriteLine($"training the image judge ({o.CacheName}: class and attribute of Fashion-MNIST and MNIST images) from {o.Backbone.CacheName}; cached in {dir}");
        var fashion = TaskCatalog.Load("fashion-mnist", cache, log);
        var mnist = TaskCatalog.Load("mnist", cache, log);
        // Validation (which picks the epoch) comes from the training split, after the training images; the test split is only tested on.
        var train = Labelled(fashion.ImageTrain, mnist.ImageTrain, o.ImagesPerSource, o.Seed, "judge/train");
        var validation = Labelled(fashion.ImageTrain, mnist.ImageTrain, ValidationImagesPerSource, o.Seed, "judge/validation", skip: o.ImagesPerSource);
        var test = Labelled(fashion.ImageTest, mnist.ImageTest, Math.Min(o.TestImagesPerSource, Math.Min(fashion.ImageTest.Count, mnist.ImageTest.Count)), o.Seed + 1, "judge/test");
        torch.manual_seed(o.Seed);
        var model = VitPretraining.Load(backbone, ClassNames.Count * AttributeCount);
        var trainer = new Trainer(PeftModel.Wrap(model, "full"), new TrainOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, WeightDecay = 0.05,
            Seed = o.Seed, Device = o.Device, CheckpointEvery = 200,
        }, observer);
        var result = trainer.Fit(new ImageBatchSource(train), new ImageBatchSource(validation), Path.Combine(dir, "run"), resume: true);
        model.to(CPU);
        var judge = new ImageJudge(model, new JudgeInfo(0, 0, train.Count, test.Count, result.Seconds));
        var (classes, attributes) = judge.Predict(FromUnit(test));
        int n = test.Count;
        double classAcc = Enumerable.Range(0, n).Count(i => classes[i] == test.Labels[i] / AttributeCount) / (double)n;
        double attrAcc = Enumerable.Range(0, n).Count(i => (int)attributes[i] == test.Labels[i] % AttributeCount) / (double)n;
        var info = new JudgeInfo(classAcc, attrAcc, train.Count, n, result.Seconds);
        var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu());
        IO.AtomicFile.Write(Path.Combine(dir, WeightsFile), tmp => Safetensors.SaveStateDict(tmp, state));
        // Written last: its presence, with this code's version, marks the judge complete.
        IO.AtomicFile.WriteAllText(infoPath, JsonSerializer.Serialize(new Stored(CodeVersion, info)));
        Directory.Delete(Path.Combine(dir, "run"), true);
        log.WriteLine($"image judge: class accuracy {classAcc:P2}, attribute accuracy {attrAcc:P2} on {n} held-out images ({result.Seconds:F0} s)");
        return new ImageJudge(model, info);
    }

    /// <summary>
    /// <paramref name="count"/> images from each of the two sources, after the first <paramref name="skip"/> of a
    /// seeded order (so that two calls with the same seed and disjoint ranges draw disjoint images), each with an
    /// attribute drawn uniformly and applied, labelled class * 4 + attribute with digits after the garments.
    /// </summary>
    public static ImageDataset Labelled(ImageDataset fashion, ImageDataset digits, int count, int seed, string name, int skip = 0)
    {
        var attributes = new Random(seed * 7 + skip + 1);
        var pixels = new List<float>();
        var labels = new List<int>();
        foreach (var (source, offset) in new[] { (fashion, 0), (digits, DigitOffset) })
        {
            var order = Enumerable.Range(0, source.Count).ToArray();
            new Random(seed * 31 + offset).Shuffle(order);
            if (skip + count > order.Length)
                throw new ArgumentException($"{source.Name}: {order.Length} images, {skip} + {count} asked for");
            foreach (int i in order.Skip(skip).Take(count))
            {
                var attribute = (ImageAttribute)attributes.Next(AttributeCount);
                pixels.AddRange(CaptionedCorpus.Apply(attribute, source.Image(i), source.Channels, source.Height));
                labels.Add((source.Labels[i] + offset) * AttributeCount + (int)attribute);
            }
        }
        var classes = ClassNames.SelectMany(c => Enum.GetNames<ImageAttribute>().Select(a => $"{c} ({a.ToLowerInvariant()})")).ToList();
        return new ImageDataset(pixels.ToArray(), labels.ToArray(), classes, fashion.Channels, fashion.Height, fashion.Width, name);
    }

    /// <summary>The images of <paramref name="data"/> (values in [0, 1]) in the diffusion model's range [-1, 1].</summary>
    public static Tensor FromUnit(ImageDataset data) =>
        tensor(data.Pixels.ToArray(), new long[] { data.Count, data.Channels, data.Height, data.Width }) * 2 - 1;

    /// <summary>The probabilities of each class (N, 20) and of each attribute (N, 4), summed out of the 80-way joint prediction.</summary>
    public (Tensor Classes, Tensor Attributes) Probabilities(Tensor images)
    {
        using var probabilities = InBatches(images, batch => nn.functional.softmax(model.forward(batch), -1));
        using var joint = probabilities.view(-1, ClassNames.Count, AttributeCount);
        return (joint.sum(2), joint.sum(1));
    }

    /// <summary>
    /// <paramref name="f"/> over the images (values in [-1, 1]) in batches of 256, each given to the ViT as it was
    /// trained (values in [0, 1], on the CPU), without gradients; the rows of the results joined.
    /// </summary>
    internal static Tensor InBatches(Tensor images, Func<Batch, Tensor> f)
    {
        using var _ = no_grad();
        var parts = new List<Tensor>();
        for (long start = 0; start < images.shape[0]; start += 256)
        {
            using var scope = NewDisposeScope();
            using var batch = new Batch((images.narrow(0, start, Math.Min(256, images.shape[0] - start)).to(ScalarType.Float32).cpu() + 1) / 2);
            parts.Add(f(batch).MoveToOuterDisposeScope());
        }
        var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>The most probable class (index into <see cref="ClassNames"/>) and attribute of each image.</summary>
    public (int[] Classes, ImageAttribute[] Attributes) Predict(Tensor images)
    {
        var (c, a) = Probabilities(images);
        using (c) using (a)
        {
            using var ci = c.argmax(1);
            using var ai = a.argmax(1);
            return (ci.data<long>().Select(v => (int)v).ToArray(), ai.data<long>().Select(v => (ImageAttribute)v).ToArray());
        }
    }

    /// <summary>
    /// What the judge sees in <paramref name="images"/>: how many it gives each class and each attribute, most first
    /// (ties in class order), and the share of images whose class is <paramref name="expectedClass"/>, when one is named.
    /// </summary>
    public JudgedImages Judge(Tensor images, string? expectedClass = null)
    {
        var (classes, attributes) = Predict(images);
        return JudgedImages.Tally(classes, attributes, expectedClass);
    }

    private static VisionTransformer LoadWeights(PretrainedVit backbone, string path)
    {
        var model = new VisionTransformer(backbone.Config with { Classes = ClassNames.Count * AttributeCount });
        var w = IO.SafetensorsFile.Load(path);
        StateDictLoader.Load(model, w, path, strict: true);
        foreach (var t in w.Values) t.Dispose();
        return model;
    }

    private sealed record Stored(int Version, JudgeInfo Judge);

    private static JudgeInfo? ReadInfo(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<Stored>(File.ReadAllText(path)) is { Version: CodeVersion } s ? s.Judge : null; }
        catch (JsonException) { return null; }
    }

    public void Dispose() => model.Dispose();
}

/// <summary>
/// Features of images for the sample-quality and concept metrics: the pretrained <c>vit-fmnist</c>'s final
/// class-token state (64 wide), as DINO or CLIP image features serve in the paper's metrics. Images in [-1, 1].
/// </summary>
public sealed class ImageFeatures : IDisposable
{
    private readonly VisionTransformer model;

    public ImageFeatures(PretrainedVit backbone)
    {
        model = VitPretraining.Load(backbone, backbone.Config.Classes);
        model.eval();
    }

    /// <summary>(N, D) features of (N, C, H, W) images with values in [-1, 1], on the CPU.</summary>
    public Tensor Of(Tensor images) => ImageJudge.InBatches(images, model.Features);

    public void Dispose() => model.Dispose();
}

/// <summary>The judge's verdict on a set of images: counts per class and per attribute, most first.</summary>
public sealed record JudgedImages(int Images, IReadOnlyList<(string Name, int Count)> Classes, IReadOnlyList<(ImageAttribute Attribute, int Count)> Attributes,
    string? ExpectedClass, double? ExpectedShare)
{
    /// <summary>Counts the predictions; <paramref name="expectedClass"/> (one of <see cref="ImageJudge.ClassNames"/>) also gets its share.</summary>
    public static JudgedImages Tally(int[] classes, ImageAttribute[] attributes, string? expectedClass = null)
    {
        if (classes.Length != attributes.Length) throw new ArgumentException($"{classes.Length} class predictions but {attributes.Length} attribute predictions");
        if (expectedClass is not null && !ImageJudge.ClassNames.Contains(expectedClass))
            throw new ArgumentException($"'{expectedClass}' is not one of the judge's classes ({string.Join(", ", ImageJudge.ClassNames)})", nameof(expectedClass));
        var byClass = classes.GroupBy(c => c).OrderByDescending(g => g.Count()).ThenBy(g => g.Key)
            .Select(g => (ImageJudge.ClassNames[g.Key], g.Count())).ToList();
        var byAttribute = attributes.GroupBy(a => a).OrderByDescending(g => g.Count()).ThenBy(g => g.Key)
            .Select(g => (g.Key, g.Count())).ToList();
        double? share = expectedClass is null || classes.Length == 0 ? null
            : classes.Count(c => ImageJudge.ClassNames[c] == expectedClass) / (double)classes.Length;
        return new JudgedImages(classes.Length, byClass, byAttribute, expectedClass, share);
    }

    /// <summary>The judge's class among <see cref="ImageJudge.ClassNames"/> that <paramref name="prompt"/> names ("a rotated photo of a sneaker": "a sneaker"), or null.</summary>
    public static string? ClassIn(string prompt) =>
        ImageJudge.ClassNames.Where(name => Regex.IsMatch(prompt, $@"\b{Regex.Escape(name)}\b", RegexOptions.IgnoreCase))
            .OrderByDescending(n => n.Length).FirstOrDefault();

    public override string ToString() =>
        (ExpectedShare is { } s ? $"{ExpectedClass} in {s * 100:F0}% ({(int)Math.Round(s * Images)} of {Images}); " : "") +
        $"classes: {string.Join(", ", Classes.Select(c => $"{c.Name} {c.Count}"))}; attributes: {string.Join(", ", Attributes.Select(a => $"{a.Attribute.ToString().ToLowerInvariant()} {a.Count}"))}";
}
