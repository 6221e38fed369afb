using CoeffTune.Diffusion;

namespace CoeffTune.Tests.Diffusion;

public sealed class CaptionedCorpusTests
{
    [Fact]
    public void Captions_name_the_attribute_and_the_class()
    {
        Assert.Equal("a photo of a sneaker", CaptionedCorpus.Caption(ImageAttribute.Plain, "photo", "a sneaker"));
        Assert.Equal("a rotated photo of a dress", CaptionedCorpus.Caption(ImageAttribute.Rotated, "photo", "a dress"));
        Assert.Equal("an inverted image of the digit three", CaptionedCorpus.Caption(ImageAttribute.Inverted, "image", "the digit three"));
        Assert.Equal("an image of the digit three", CaptionedCorpus.Caption(ImageAttribute.Plain, "image", "the digit three"));
        Assert.Equal("a small photo of sks", CaptionedCorpus.Caption(ImageAttribute.Small, "photo", "sks"));
    }

    [Fact]
    public void Held_out_classes_have_no_noun()
    {
        Assert.Null(CaptionedCorpus.FashionNoun(8));
        Assert.Null(CaptionedCorpus.FashionNoun(9));
        Assert.Null(CaptionedCorpus.DigitNoun(8));
        Assert.Null(CaptionedCorpus.DigitNoun(9));
        Assert.Equal("a sneaker", CaptionedCorpus.FashionNoun(7));
        Assert.Equal("the digit seven", CaptionedCorpus.DigitNoun(7));
    }

    [Fact]
    public void Attributes_transform_the_image_as_named()
    {
        // A 4x4 image with one bright pixel at row 0, column 3.
        var image = new float[16];
        image[3] = 1;
        Assert.Equal(image, CaptionedCorpus.Apply(ImageAttribute.Plain, image, 1, 4));
        var inverted = CaptionedCorpus.Apply(ImageAttribute.Inverted, image, 1, 4);
        Assert.Equal(0, inverted[3]);
        Assert.Equal(15, inverted.Sum());
        var rotated = CaptionedCorpus.Apply(ImageAttribute.Rotated, image, 1, 4);
        Assert.Equal(1, rotated.Sum());
        Assert.Equal(0, rotated[3]);
        var small = CaptionedCorpus.Apply(ImageAttribute.Small, Enumerable.Repeat(1f, 16).ToArray(), 1, 4);
        // Shrunk to 2x2 and centred: rows and columns 1..2 bright, a black border.
        Assert.Equal(new float[] { 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0 }, small);
    }

    [Fact]
    public void Attribute_draws_follow_their_shares_and_depend_on_seed_and_index_only()
    {
        var draws = Enumerable.Range(0, 6000).Select(i => CaptionedCorpus.AttributeOf(3, i)).ToList();
        Assert.Equal(draws, Enumerable.Range(0, 6000).Select(i => CaptionedCorpus.AttributeOf(3, i)));
        Assert.InRange(draws.Count(a => a == ImageAttribute.Plain), 2800, 3200);
        foreach (var a in new[] { ImageAttribute.Rotated, ImageAttribute.Inverted, ImageAttribute.Small })
            Assert.InRange(draws.Count(x => x == a), 850, 1150);
    }
}
