using CoeffTune.Data;
using CoeffTune.Diffusion;

namespace CoeffTune.Tests.Diffusion;

/// <summary>The judge's labelled images: each label names the image's class and the attribute applied to it.</summary>
public sealed class ImageJudgeTests
{
    /// <summary>A source whose image i is filled with the value i / count, so an image tells which one it was.</summary>
    private static ImageDataset Source(int count, int side, string name)
    {
        var px = new float[count * side * side];
        for (int i = 0; i < count; i++)
            for (int p = 0; p < side * side; p++) px[i * side * side + p] = p % side < side / 2 ? (float)i / count : 0.5f * i / count;
        return new ImageDataset(px, Enumerable.Range(0, count).Select(i => i % 10).ToArray(), Enumerable.Range(0, 10).Select(c => $"c{c}").ToList(), 1, side, side, name);
    }

    [Fact]
    public void Labels_are_class_times_four_plus_the_attribute_applied()
    {
        const int side = 8;
        var fashion = Source(40, side, "f");
        var digits = Source(30, side, "d");
        var set = ImageJudge.Labelled(fashion, digits, 12, seed: 3, "judge");
        Assert.Equal(24, set.Count);
        Assert.Equal(80, set.Classes.Count);
        for (int k = 0; k < set.Count; k++)
        {
            int cls = set.Labels[k] / 4;
            var attribute = (ImageAttribute)(set.Labels[k] % 4);
            var source = k < 12 ? fashion : digits;
            Assert.Equal(k < 12, cls < ImageJudge.DigitOffset);
            // Find the source image this one was made from: exactly one gives these pixels with this attribute.
            var matches = Enumerable.Range(0, source.Count).Where(i =>
                CaptionedCorpus.Apply(attribute, source.Image(i), 1, side).AsSpan().SequenceEqual(set.Image(k))).ToList();
            Assert.Single(matches);
            Assert.Equal(source.Labels[matches[0]], cls % ImageJudge.DigitOffset);
        }
        // Every attribute turns up.
        Assert.Equal(4, set.Labels.Select(l => l % 4).Distinct().Count());
    }

    /// <summary>Constant images: image i is filled with (i + 1) / (count + 1), so its centre pixel names it whatever the attribute (inversion undone).</summary>
    private static ImageDataset Constant(int count, int side, string name) =>
        new(Enumerable.Range(0, count).SelectMany(i => Enumerable.Repeat((i + 1f) / (count + 1), side * side)).ToArray(),
            Enumerable.Range(0, count).Select(i => i % 10).ToArray(), Enumerable.Range(0, 10).Select(c => $"c{c}").ToList(), 1, side, side, name);

    private static HashSet<(bool Digit, int Image)> Drawn(ImageDataset set, int count, int perSource, int side)
    {
        var drawn = new HashSet<(bool, int)>();
        for (int k = 0; k < set.Count; k++)
        {
            float centre = set.Image(k)[side / 2 * side + side / 2];
            if (set.Labels[k] % 4 == (int)ImageAttribute.Inverted) centre = 1 - centre;
            Assert.True(drawn.Add((k >= perSource, (int)Math.Round(centre * (count + 1)) - 1)), "an image drawn twice");
        }
        return drawn;
    }

    [Fact]
    public void Validation_after_skip_never_repeats_a_training_image_and_too_many_is_refused()
    {
        const int side = 8, count = 40;
        var fashion = Constant(count, side, "f");
        var digits = Constant(count, side, "d");
        var train = Drawn(ImageJudge.Labelled(fashion, digits, 20, seed: 1, "train"), count, 20, side);
        var validation = Drawn(ImageJudge.Labelled(fashion, digits, 10, seed: 1, "validation", skip: 20), count, 10, side);
        Assert.Equal(40, train.Count);
        Assert.Equal(20, validation.Count);
        Assert.Empty(train.Intersect(validation));
        Assert.Contains("40 images, 35 + 10", Assert.Throws<ArgumentException>(() => ImageJudge.Labelled(fashion, digits, 10, 1, "x", skip: 35)).Message);
    }

    [Fact]
    public void A_tally_counts_classes_and_attributes_most_first_and_the_prompts_share()
    {
        // Classes 7 (a sneaker) x3, 5 (a sandal) x2, 13 (the digit three) x1; attributes plain x4, small x2.
        int[] classes = [7, 5, 7, 13, 5, 7];
        ImageAttribute[] attributes = [ImageAttribute.Plain, ImageAttribute.Small, ImageAttribute.Plain, ImageAttribute.Plain, ImageAttribute.Small, ImageAttribute.Plain];
        var t = JudgedImages.Tally(classes, attributes, "a sneaker");
        Assert.Equal(6, t.Images);
        Assert.Equal([("a sneaker", 3), ("a sandal", 2), ("the digit three", 1)], t.Classes);
        Assert.Equal([(ImageAttribute.Plain, 4), (ImageAttribute.Small, 2)], t.Attributes);
        Assert.Equal(0.5, t.ExpectedShare);
        Assert.Equal("a sneaker in 50% (3 of 6); classes: a sneaker 3, a sandal 2, the digit three 1; attributes: plain 4, small 2", t.ToString());
        Assert.Null(JudgedImages.Tally(classes, attributes).ExpectedShare);
        Assert.Contains("'a boat'", Assert.Throws<ArgumentException>(() => JudgedImages.Tally(classes, attributes, "a boat")).Message);
        Assert.Throws<ArgumentException>(() => JudgedImages.Tally(classes, attributes[..3]));
    }

    [Theory]
    [InlineData("a photo of a sneaker", "a sneaker")]
    [InlineData("a rotated photo of a t-shirt", "a t-shirt")]
    [InlineData("A small photo of a Shirt", "a shirt")]
    [InlineData("an inverted image of the digit seven", "the digit seven")]
    [InlineData("a photo of sks", null)]
    public void The_class_a_prompt_names_is_found(string prompt, string? expected) => Assert.Equal(expected, JudgedImages.ClassIn(prompt));
}
