using CoeffTune.Assets;
using CoeffTune.Data;

namespace CoeffTune.Diffusion;

/// <summary>What was done to an image, named in its caption.</summary>
public enum ImageAttribute { Plain, Rotated, Inverted, Small }

/// <summary>
/// The captioned corpus the diffusion transformer is pretrained on: Fashion-MNIST and MNIST images, each captioned
/// with its class and one attribute applied to it as augmentation ("a photo of a sneaker", "a rotated photo of a
/// dress", "an inverted image of the digit three", "a small photo of a bag"). Some classes are left out of
/// pretraining altogether (<see cref="HeldOutFashion"/>, <see cref="HeldOutDigits"/>), so that they can serve as new
/// concepts to customise the model with later.
/// </summary>
public static class CaptionedCorpus
{
    /// <summary>Fashion-MNIST classes as noun phrases, in label order.</summary>
    public static readonly IReadOnlyList<string> FashionNouns =
        ["a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat", "a sandal", "a shirt", "a sneaker", "a bag", "an ankle boot"];

    /// <summary>MNIST digits as noun phrases, in label order.</summary>
    public static readonly IReadOnlyList<string> DigitNouns =
        ["the digit zero", "the digit one", "the digit two", "the digit three", "the digit four",
         "the digit five", "the digit six", "the digit seven", "the digit eight", "the digit nine"];

    /// <summary>Fashion-MNIST classes never seen in pretraining: bag (8) and ankle boot (9), concepts for later.</summary>
    public static readonly IReadOnlyList<int> HeldOutFashion = [8, 9];

    /// <summary>MNIST digits never seen in pretraining: 8 and 9, concepts for later.</summary>
    public static readonly IReadOnlyList<int> HeldOutDigits = [8, 9];

    /// <summary>How often each attribute is drawn: half the images are plain, the rest split evenly.</summary>
    public static readonly IReadOnlyList<(ImageAttribute Attribute, double Share)> AttributeShares =
        [(ImageAttribute.Plain, 0.5), (ImageAttribute.Rotated, 1.0 / 6), (ImageAttribute.Inverted, 1.0 / 6), (ImageAttribute.Small, 1.0 / 6)];

    /// <summary>The caption of an image of <paramref name="noun"/> ("a sneaker", "the digit three", "sks") as a <paramref name="medium"/> ("photo", "image").</summary>
    public static string Caption(ImageAttribute attribute, string medium, string noun) => attribute switch
    {
        ImageAttribute.Plain => $"a{(StartsWithVowel(medium) ? "n" : "")} {medium} of {noun}",
        ImageAttribute.Rotated => $"a rotated {medium} of {noun}",
        ImageAttribute.Inverted => $"an inverted {medium} of {noun}",
        ImageAttribute.Small => $"a small {medium} of {noun}",
        _ => throw new ArgumentOutOfRangeException(nameof(attribute), attribute, null),
    };

    private static bool StartsWithVowel(string s) => s.Length > 0 && "aeiou".Contains(char.ToLowerInvariant(s[0]));

    /// <summary>
    /// The attribute applied to a square image with values in [0, 1]: rotated a quarter turn counter-clockwise,
    /// inverted (1 - x), or shrunk to half its side and centred on a black background.
    /// </summary>
    public static float[] Apply(ImageAttribute attribute, ReadOnlySpan<float> image, int channels, int side)
    {
        switch (attribute)
        {
            case ImageAttribute.Plain: return image.ToArray();
            case ImageAttribute.Rotated: return ImageOps.Rotate90(image, channels, side, 1);
            case ImageAttribute.Inverted:
                {
                    var o = new float[image.Length];
                    for (int i = 0; i < o.Length; i++) o[i] = 1 - image[i];
                    return o;
                }
            case ImageAttribute.Small:
                {
                    int small = side / 2, offset = (side - small) / 2;
                    var shrunk = ImageOps.ResizeBilinear(image, channels, side, side, small, small);
                    var o = new float[image.Length];
                    for (int c = 0; c < channels; c++)
                        for (int y = 0; y < small; y++)
                            Array.Copy(shrunk, (c * small + y) * small, o, (c * side + y + offset) * side + offset, small);
                    return o;
                }
            default: throw new ArgumentOutOfRangeException(nameof(attribute), attribute, null);
        }
    }

    /// <summary>The attribute of image <paramref name="index"/>, drawn from <see cref="AttributeShares"/> by a generator of the seed and index alone.</summary>
    public static ImageAttribute AttributeOf(int seed, int index)
    {
        double u = new Random(unchecked(seed * 1_000_003 + index * 7919 + 11)).NextDouble();
        foreach (var (attribute, share) in AttributeShares)
        {
            if (u < share) return attribute;
            u -= share;
        }
        return AttributeShares[^1].Attribute;
    }

    /// <summary>
    /// The images of <paramref name="data"/> whose class has a noun (null nouns are left out), each with its attribute
    /// applied and its caption: pixels (values in [0, 1]) and captions in the same order.
    /// </summary>
    public static (float[] Pixels, List<string> Captions) Caption(ImageDataset data, Func<int, string?> noun, string medium, int seed)
    {
        if (data.Height != data.Width) throw new ArgumentException($"{data.Name}: attributes need square images, got {data.Height}x{data.Width}");
        // Sized once: the pretraining corpus is some 40 million floats.
        var kept = Enumerable.Range(0, data.Count).Where(i => noun(data.Labels[i]) is not null).ToArray();
        var pixels = new float[(long)kept.Length * data.ImageSize];
        var captions = new List<string>(kept.Length);
        for (int k = 0; k < kept.Length; k++)
        {
            int i = kept[k];
            var attribute = AttributeOf(seed, i);
            Apply(attribute, data.Image(i), data.Channels, data.Height).CopyTo(pixels, (long)k * data.ImageSize);
            captions.Add(Caption(attribute, medium, noun(data.Labels[i])!));
        }
        return (pixels, captions);
    }

    /// <summary>A noun for each Fashion-MNIST class except the held-out ones.</summary>
    public static string? FashionNoun(int label) => HeldOutFashion.Contains(label) ? null : FashionNouns[label];

    /// <summary>A noun for each digit except the held-out ones.</summary>
    public static string? DigitNoun(int label) => HeldOutDigits.Contains(label) ? null : DigitNouns[label];

    /// <summary>
    /// The pretraining corpus: Fashion-MNIST's training images and MNIST's pool (the <c>mnist</c> task's training side)
    /// for training, their test images for validation, held-out classes left out; <paramref name="trainImages"/> and
    /// <paramref name="validationImages"/> cap the sizes (a seeded sample; null: all).
    /// </summary>
    public static (CaptionedImages Train, CaptionedImages Validation) Load(ICaptionEncoder encoder, AssetCache? cache = null, TextWriter? log = null,
        int seed = 0, int? trainImages = null, int? validationImages = 1024)
    {
        var fashion = TaskCatalog.Load("fashion-mnist", cache, log);
        var mnist = TaskCatalog.Load("mnist", cache, log);
        var train = Join(Caption(fashion.ImageTrain, FashionNoun, "photo", seed), Caption(mnist.ImageTrain, DigitNoun, "image", seed + 1));
        var validation = Join(Caption(fashion.ImageTest, FashionNoun, "photo", seed + 2), Caption(mnist.ImageTest, DigitNoun, "image", seed + 3));
        int side = fashion.ImageTrain.Height;
        return (Build(train, trainImages, seed, side, encoder, "captioned fashion-mnist + mnist"),
                Build(validation, validationImages, seed + 4, side, encoder, "captioned fashion-mnist + mnist/test"));
    }

    private static (float[] Pixels, List<string> Captions) Join((float[] Pixels, List<string> Captions) a, (float[] Pixels, List<string> Captions) b) =>
        ([.. a.Pixels, .. b.Pixels], [.. a.Captions, .. b.Captions]);

    private static CaptionedImages Build((float[] Pixels, List<string> Captions) set, int? cap, int seed, int side, ICaptionEncoder encoder, string name)
    {
        int n = set.Captions.Count, size = side * side;
        if (cap is int c && c < n)
        {
            var order = Enumerable.Range(0, n).ToArray();
            new Random(seed).Shuffle(order);
            var chosen = order.Take(c).Order().ToArray();
            var px = new float[(long)chosen.Length * size];
            for (int k = 0; k < chosen.Length; k++) Array.Copy(set.Pixels, (long)chosen[k] * size, px, (long)k * size, size);
            return new CaptionedImages(px, 1, side, side, chosen.Select(i => set.Captions[i]).ToList(), encoder, name);
        }
        return new CaptionedImages(set.Pixels, 1, side, side, set.Captions, encoder, name);
    }
}
